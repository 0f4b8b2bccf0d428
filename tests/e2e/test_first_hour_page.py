"""A designer's first hour (issue 19) in a real browser, without a long training: runs read by name and trigger and
can be renamed; the SD 1.5 preset on this CPU machine is warned about and fixed before Start; sample prompts follow
the dataset and an example brings its preset; answers sit by their buttons and a run's end is announced.

The runs here are folders written the way a training writes them (events, an exported LoRA), so nothing trains.
Screenshots go to $STUDIO_TEST_ARTIFACTS (default tmp/artifacts/) for a person to look at.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect
from studio_server import free_port, serve

from studio.paths import POCKET_MODEL_DIR, PROJECT_ROOT

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(os.environ.get("STUDIO_TEST_ARTIFACTS", PROJECT_ROOT / "tmp" / "artifacts"))
LABEL = "stars · LoRA · trigger zq"  # the finished run's default name (dataset and method) and its trigger


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"first-hour-{name}.png"), full_page=True)


def _field(page, elem_id: str):
    return page.locator(f"#{elem_id} input, #{elem_id} textarea").first


def _datasets(root: Path) -> None:
    """example-stars (trigger zq), and hgz-shapes (trigger hgz), as the Dataset tab makes them."""
    from studio.data.examples import create_example
    from studio.data.importer import ImportOptions, import_dataset
    from studio.data.validate import ImageRules
    from studio.pocket.world import Scene, render

    create_example("stars", root)
    folder = root.parent / "hgz-upload"
    folder.mkdir()
    for index, (shape, colour) in enumerate((("circle", "red"), ("square", "blue"), ("triangle", "green"))):
        render(Scene(shape, colour, "black"), 64).save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(f"a {colour} hgz on a black background")
    options = ImportOptions(rules=ImageRules(resolution=64), trigger="hgz")
    import_dataset("hgz-shapes", [folder], root=root, options=options)


def _finished_run(data_dir: Path) -> Path:
    """A finished lora-pocket run on example-stars with a real (random) pocket LoRA exported."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "generate"))
    from lora_factory import write_lora

    from studio import runs
    from studio.runs import names as run_names
    from studio.train.config import resolve_config
    from studio.train.start import put_trigger

    config = resolve_config(preset="lora-pocket", overrides={"steps": "20"})
    put_trigger(config, "zq")
    source = data_dir / "datasets" / "example-stars"
    run_dir = runs.create_run_folder(config.to_yaml(), {"source": str(source), "items": []}, "20261206-043312-lora-aaaa",
                                     data_dir / "runs")  # fmt: skip
    run_names.name_new_run(run_dir, "LoRA", source, "zq")
    out = run_dir / "outputs" / "lora-diffusers"
    diffusers_file, kohya_file = write_lora(POCKET_MODEL_DIR, data_dir / "scratch-lora", seed=1)
    out.mkdir(parents=True)
    diffusers_file.rename(out / diffusers_file.name)
    kohya_file.rename(run_dir / "outputs" / "lora-kohya.safetensors")
    runs.append_event(run_dir, "started", step=0, total_steps=20, pid=0)
    for step in range(1, 21):
        runs.append_event(run_dir, "step", step=step, loss=0.5 / step, lr=2e-3, seconds=0.1)
    runs.append_event(run_dir, "export", step=20, path="outputs/lora-diffusers")
    runs.append_event(run_dir, "export", step=20, path="outputs/lora-kohya.safetensors")
    runs.append_event(run_dir, "finished", step=20)
    _scorecard(run_dir)
    return run_dir


def _scorecard(run_dir: Path) -> None:
    """A saved scorecard that says "best at step 10, overfitted by step 20", as `studio eval` writes one."""
    import json

    def scores(step, subject, memorised, loss):
        return {
            "step": step, "train_loss": loss, "subject_fidelity": subject, "prompt_fidelity": 0.9,
            "prior_preservation": 1.0, "prior_pixel_distance": 0.01, "memorisation": memorised, "held_out": subject - 0.1,
        }  # fmt: skip

    card = {
        "run_id": run_dir.name, "judge": "pocket", "settings": {"prompts": 4, "steps": 20}, "seconds": 12,
        "best": {"step": 10, "reason": "step 10 draws the subject best (0.80) and follows the prompts."},
        "overfitting": {"flagged": True, "reason": "by step 20 half the images are near-copies of a training image."},
        "checkpoints": [scores(0, 0.1, None, None), scores(10, 0.8, 0.1, 0.05), scores(20, 0.7, 0.5, 0.03)],
    }  # fmt: skip
    (run_dir / "eval").mkdir()
    (run_dir / "eval" / "scorecard.json").write_text(json.dumps(card))


@pytest.fixture(scope="module")
def first_hour_server(tmp_path_factory):
    """The studio on a data folder that already holds two datasets and a finished run."""
    data_dir = tmp_path_factory.mktemp("first-hour-data")
    _datasets(data_dir / "datasets")
    _finished_run(data_dir)
    port = free_port()
    yield from serve(data_dir, ["app.py"], port, env={"PORT": str(port)})


@pytest.fixture()
def page(browser, first_hour_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(first_hour_server["url"])
    page.get_by_text("Diffusion Studio").first.wait_for()
    yield page
    context.close()


def test_runs_read_by_name_and_trigger_and_a_rename_reaches_the_saved_mix(page, first_hour_server):
    # Runs: the table and the picker say what the run is; its id stays, in the last column
    page.get_by_role("tab", name="Runs").click()
    expect(page.locator("#runs-table")).to_contain_text(LABEL, timeout=10_000)
    expect(page.locator("#runs-table")).to_contain_text("20261206-043312-lora-aaaa")
    page.locator("#runs-pick input").click()
    page.get_by_role("option", name=LABEL).click()
    expect(_field(page, "runs-name")).to_have_value("stars · LoRA", timeout=10_000)
    expect(page.locator("#runs-status")).to_contain_text(LABEL)
    expect(page.locator("#runs-score-verdict")).to_contain_text("Next: Use the step-10 checkpoint", timeout=10_000)
    page.locator("#runs-score-chart path[aria-roledescription='line mark']").first.wait_for(timeout=10_000)
    page.locator("#runs-loss path[aria-roledescription='line mark']").first.wait_for(timeout=10_000)
    _shot(page, "0-runs-scorecard")
    # two downloads, and no × beside them that reads as "delete this file"
    page.locator("#runs-files").get_by_text("lora-kohya").wait_for()
    expect(page.locator("#runs-files .label-clear-button")).to_have_count(2)
    expect(page.locator("#runs-files .label-clear-button").first).to_be_hidden()

    # Playground: the LoRA slot offers the run by its label; the saved mix names it so
    page.get_by_role("tab", name="Playground").click()
    page.locator("#pg-lora-0 input").click()
    page.get_by_role("option", name=LABEL, exact=True).click()
    _field(page, "pg-mix-name").fill("stars mix")
    page.locator("#pg-save-mix").click()
    expect(page.locator("#pg-mix-message")).to_contain_text(f"Saved the mix ({LABEL} 1)", timeout=60_000)
    _shot(page, "1-playground-mix")

    # Rename it in Runs: the table, the status line and the next saved mix use the new name
    page.get_by_role("tab", name="Runs").click()
    _field(page, "runs-name").fill("purple stars, 20 steps")
    page.locator("#runs-rename").click()
    expect(page.locator("#runs-message")).to_contain_text("purple stars, 20 steps · trigger zq", timeout=10_000)
    expect(page.locator("#runs-table")).to_contain_text("purple stars, 20 steps · trigger zq", timeout=10_000)
    expect(page.locator("#runs-status")).to_contain_text("purple stars, 20 steps")
    _shot(page, "2-runs-renamed")
    run_dir = first_hour_server["data_dir"] / "runs" / "20261206-043312-lora-aaaa"
    assert (run_dir / "outputs" / "lora-diffusers").is_dir()  # the files keep their names

    page.get_by_role("tab", name="Playground").click()
    page.locator("#pg-save-mix").click()
    expect(page.locator("#pg-mix-message")).to_contain_text("(purple stars, 20 steps · trigger zq 1)", timeout=60_000)


def test_the_sd15_preset_without_a_gpu_is_warned_about_and_fixed_before_start(page, first_hour_server):
    runs_root = first_hour_server["data_dir"] / "runs"
    before = set(runs_root.iterdir())
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-dataset input").click()
    page.get_by_role("option", name="example-stars", exact=True).click()
    page.locator("#train-preset input").click()
    page.get_by_role("option", name="lora-sd15").click()
    advice = page.locator("#train-advice")
    expect(advice).to_contain_text("fp16 mixed precision, which needs a GPU", timeout=10_000)
    expect(advice).to_contain_text("The smallest image is 64 px and this preset trains at 512 px")
    fix = page.locator("#train-cpu-fix")
    expect(fix).to_be_visible()
    _shot(page, "3-sd15-warned")

    # Start anyway: refused in a sentence beside the button, and no run folder is left behind
    page.locator("#train-start").click()
    expect(page.locator("#train-message")).to_contain_text("needs a GPU", timeout=10_000)
    assert set(runs_root.iterdir()) == before

    fix.click()
    expect(page.locator("#train-message")).to_contain_text("Mixed precision is now no", timeout=10_000)
    page.locator("#train-advanced button").first.click()  # the field sits under Advanced
    expect(page.locator("#cfg-training-mixed_precision input")).to_have_value("no", timeout=10_000)
    expect(advice).not_to_contain_text("needs a GPU", timeout=10_000)
    expect(fix).to_be_hidden()
    _shot(page, "4-sd15-fixed")


def test_sample_prompts_follow_the_dataset_and_an_example_brings_its_preset(page):
    page.get_by_role("tab", name="Train").click()
    prompts = page.locator("#cfg-training-sample_prompts textarea")
    page.locator("#train-dataset input").click()
    page.get_by_role("option", name="hgz-shapes", exact=True).click()
    # the form showed the last run's prompts (written for zq): they now say hgz
    expect(prompts).to_have_value("a hgz on a black background\na hgz on a brown background", timeout=10_000)
    prompts.fill("a hgz on a black background\na red hgz on a white background")
    prompts.press("Tab")
    page.locator("#train-dataset input").click()
    page.get_by_role("option", name="example-stars", exact=True).click()
    expect(prompts).to_have_value("a zq on a black background\na red zq on a white background", timeout=10_000)
    _shot(page, "5-prompts-follow")

    # the pink-style example says "Full fine-tune with finetune-style-pocket": picking it applies that
    page.get_by_role("tab", name="Dataset").click()
    page.locator("#ds-example-pink-style").click()
    expect(page.locator("#ds-message")).to_contain_text("finetune-style-pocket", timeout=30_000)
    page.get_by_role("tab", name="Train").click()
    expect(page.locator("#train-dataset input")).to_have_value("example-pink-style", timeout=10_000)
    expect(page.locator("#train-method input")).to_have_value("Full fine-tune", timeout=10_000)
    expect(page.locator("#train-preset input")).to_have_value("finetune-style-pocket")
    expect(page.locator("#train-preset-note")).to_contain_text("The example recommends")
    expect(prompts).to_have_value("a circle in zq style")  # the preset's <trigger>, as the dataset says it
    _shot(page, "6-example-preset")


def test_answers_sit_by_their_buttons_and_a_runs_end_is_announced(page, first_hour_server):
    from studio import runs

    # the dataset tab: the caption answer under Auto-caption, the prepare answer under Prepare
    page.get_by_role("tab", name="Dataset").click()
    page.locator("#ds-example-stars").click()
    expect(page.locator("#ds-message")).to_contain_text("lora-pocket", timeout=30_000)
    page.locator("#ds-prepare").click()
    expect(page.locator("#ds-prepare-message")).to_contain_text("the Train tab offers it", timeout=30_000)
    button, answer = page.locator("#ds-prepare").bounding_box(), page.locator("#ds-prepare-message").bounding_box()
    _shot(page, "7-dataset-answers")
    assert 0 <= answer["y"] - (button["y"] + button["height"]) < 160, (button, answer)

    # a run training (its process: this test's), a second Start refused, then its end replaces that answer
    config = (first_hour_server["data_dir"] / "runs" / "20261206-043312-lora-aaaa" / runs.CONFIG).read_text()
    source = first_hour_server["data_dir"] / "datasets" / "example-stars"
    live = runs.create_run_folder(config, {"source": str(source), "items": []}, "20261206-050000-lora-bbbb",
                                  first_hour_server["data_dir"] / "runs")  # fmt: skip
    runs.append_event(live, "started", step=0, total_steps=2, pid=os.getpid())
    runs.append_event(live, "step", step=1, loss=0.4, lr=2e-3, seconds=0.1)
    page.get_by_role("tab", name="Train").click()
    expect(page.locator("#train-status")).to_contain_text("training, step 1 / 2", timeout=10_000)
    page.locator("#train-start").click()
    expect(page.locator("#train-message")).to_contain_text("is still training", timeout=10_000)

    runs.append_event(live, "step", step=2, loss=0.3, lr=2e-3, seconds=0.1)
    runs.append_event(live, "finished", step=2)
    expect(page.locator("#train-message")).to_contain_text("Training finished", timeout=10_000)
    expect(page.locator("#train-message")).not_to_contain_text("still training")
    expect(page.locator("[data-testid='toast-body']").first).to_contain_text("Training finished",
                                                                                         timeout=10_000)  # fmt: skip
    _shot(page, "8-training-finished")
