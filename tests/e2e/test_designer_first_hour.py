"""A designer's first hour (issue 19) in a real browser, on a studio stocked with two LoRA files and a finished run
(made without training: tests/generate/run_factory.py):

- the Playground's prompt, Generate and results are on screen together (1440x900), and in order at 800 px;
- Compare's checkpoint axis takes a run picked from a list (or typed as runs/<id>) and draws every checkpoint; its
  base settings are fields, and its weight axis names the LoRA it scales;
- the lists of LoRAs and runs follow the disk (tab opened, a run finished), and a refusal is one sentence;
- a reload gives back the tab, the Playground's form and LoRA stack, and Compare's settings.

Screenshots go to $STUDIO_TEST_ARTIFACTS (default tmp/artifacts/) for a person to look at.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from studio_server import free_port, serve

from studio.generate.png_metadata import read_params
from studio.paths import POCKET_MODEL_DIR, PROJECT_ROOT

sys.path.insert(0, str(Path(__file__).parent.parent / "generate"))
from lora_factory import write_lora  # noqa: E402
from run_factory import finish_run, write_lora_run  # noqa: E402

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(os.environ.get("STUDIO_TEST_ARTIFACTS", PROJECT_ROOT / "tmp" / "artifacts"))
RUN_ID = "20261206-090000-lora-ab12"
STEPS = (1, 2, 3)


@pytest.fixture(scope="module")
def stocked(tmp_path_factory):
    """The studio on a data folder holding loras/bold.safetensors, loras/soft.safetensors and run RUN_ID."""
    data = tmp_path_factory.mktemp("first-hour-data")
    made = tmp_path_factory.mktemp("first-hour-loras")
    (data / "loras").mkdir()
    for seed, name in ((1, "bold"), (2, "soft")):
        diffusers_file, _ = write_lora(POCKET_MODEL_DIR, made / name, seed=seed)
        diffusers_file.rename(data / "loras" / f"{name}.safetensors")
    write_lora_run(data / "runs", RUN_ID, steps=STEPS)
    port = free_port()
    yield from serve(data, ["app.py"], port, env={"PORT": str(port)})


@pytest.fixture()
def open_page(browser, stocked):
    """A page of the stocked studio at a viewport width (its own browser context: nothing remembered yet)."""
    contexts = []

    def opened(width: int = 1440, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.goto(stocked["url"])
        page.get_by_text("Diffusion Studio").first.wait_for()
        return page

    yield opened
    for context in contexts:
        context.close()


def _label(data_dir: Path, run_id: str) -> str:
    """How the lists name a run (its name and trigger word), as `studio.runs.names` decides."""
    from studio.runs.names import run_label

    return run_label(data_dir / "runs" / run_id)


def _shot(page, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def _box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def _on_screen(page, selector: str, height: int = 900) -> bool:
    box = _box(page, selector)
    return box is not None and box["y"] >= 0 and box["y"] + min(box["height"], 120) <= height


def _choose(page, elem_id: str, option: str) -> None:
    """Pick `option` in a Gradio dropdown as a person does: open it, click the option."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    # the list fades out: the next dropdown's options must not be mistaken for this one's
    page.get_by_role("option").first.wait_for(state="detached", timeout=5_000)


def _options(page, elem_id: str) -> list[str]:
    """The choices a dropdown offers now (opened, read, closed)."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    page.get_by_role("option").first.wait_for(timeout=5_000)
    names = page.get_by_role("option").all_inner_texts()
    box.blur()  # closes the list; a click on a focused box would not open it again
    page.get_by_role("option").first.wait_for(state="detached", timeout=5_000)
    return [name.strip().removeprefix("✓").strip() for name in names]  # ✓ marks the chosen one


def _type_in(page, elem_id: str, text: str) -> None:
    """Type a value of one's own into a dropdown that takes them, and wait for its list to close (while it fades
    out, it lies over what is below and takes the next click)."""
    _field(page, elem_id).fill(text)
    _field(page, elem_id).press("Enter")
    page.get_by_role("option").first.wait_for(state="detached", timeout=5_000)


def _field(page, elem_id: str):
    return page.locator(f"#{elem_id} input, #{elem_id} textarea").first


def _assert_no_error_shown(page) -> None:
    """No Gradio error on screen: neither a component's red "Error" badge nor an error toast."""
    shown = page.evaluate(
        """() => [...document.querySelectorAll('.error')]
            .filter((e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')
            .map((e) => e.innerText.trim())"""
    )
    assert not shown, f"errors on screen: {shown}"


def _latest_grid(data_dir: Path, earlier: set) -> dict:
    grids = sorted(set((data_dir / "outputs" / "grids").glob("grid-*.png")) - earlier)
    assert grids, "no grid was saved"
    return read_params(grids[-1])["grid"]


def _grids(data_dir: Path) -> set:
    return set((data_dir / "outputs" / "grids").glob("grid-*.png"))


def _press_and_read(page, button: str, words: str, timeout: int = 120_000) -> str:
    """Click `button` and wait until Compare's status line says something new holding `words`."""
    before = page.locator("#cmp-status").inner_text()
    page.locator(button).click()
    try:
        page.wait_for_function(
            """([before, words]) => {
                const text = document.querySelector('#cmp-status').innerText;
                // while it works, the status shows Gradio's progress above the old text: wait for that to go
                return text.includes(words) && !text.includes(before || "\\u0000");
            }""",
            arg=[before, words],
            timeout=timeout,
        )
    except Exception:
        _shot(page, "failed-" + "-".join(words.split()[:4]))
        raise
    return page.locator("#cmp-status").inner_text()


def test_prompt_generate_and_results_are_on_one_screen(open_page) -> None:
    page = open_page(1440, 900)
    page.get_by_role("tab", name="Playground").click()
    for selector in ("#pg-prompt", "#pg-generate", "#pg-gallery"):
        assert _on_screen(page, selector), f"{selector} is not on screen at 1440x900"
    _field(page, "pg-prompt").fill("a blue square on a white background")
    page.locator("#pg-steps input[type=number]").fill("6")
    page.locator("#pg-generate").click()
    page.locator("#pg-status").get_by_text("image(s)").wait_for(timeout=90_000)
    assert page.locator("#pg-gallery img").count() == 2
    # the images appeared where the person was looking: nothing scrolled, the results beside the prompt
    assert page.evaluate("window.scrollY") == 0
    assert _on_screen(page, "#pg-gallery img") and _on_screen(page, "#pg-prompt")
    _shot(page, "playground-1440")

    narrow = open_page(800, 900)
    narrow.get_by_role("tab", name="Playground").click()
    prompt, generate, gallery = (_box(narrow, s) for s in ("#pg-prompt", "#pg-generate", "#pg-gallery"))
    # one column: the prompt, Generate right under it, then the results
    assert generate["y"] >= prompt["y"] + prompt["height"] - 1 and generate["y"] - prompt["y"] < 300
    assert gallery["y"] >= generate["y"] + generate["height"] - 1 and gallery["y"] < 900
    _shot(narrow, "playground-800")


def test_compare_draws_every_checkpoint_of_a_picked_run_and_names_the_weighted_lora(open_page, stocked) -> None:
    page = open_page(1440, 900)
    data_dir = stocked["data_dir"]
    page.get_by_role("tab", name="Compare").click()
    # base settings are fields, with no server path in sight
    assert page.locator("#cmp-base").count() == 0
    _field(page, "cmp-steps").fill("4")
    _choose(page, "cmp-y-kind", "(none)")
    _choose(page, "cmp-x-kind", "checkpoint")
    _choose(page, "cmp-x-run", f"{_label(data_dir, RUN_ID)} (finished, {len(STEPS)} checkpoints)")
    earlier = _grids(data_dir)
    _press_and_read(page, "#cmp-render", "images in")
    grid = _latest_grid(data_dir, earlier)
    assert grid["x"]["labels"] == [f"step {step}" for step in STEPS]
    assert all(Path(v).parent.parent == data_dir / "runs" / RUN_ID for v in grid["x"]["values"])
    _assert_no_error_shown(page)

    # typed as runs/<id>, the same columns
    _type_in(page, "cmp-x-run", f"runs/{RUN_ID}")
    earlier = _grids(data_dir)
    _press_and_read(page, "#cmp-render", "images in")
    assert _latest_grid(data_dir, earlier)["x"]["labels"] == [f"step {step}" for step in STEPS]

    # two LoRAs in the base settings; the weight axis scales the one picked, and says which
    for name in ("bold", "soft"):
        _choose(page, "cmp-add-lora", name)
        page.locator("#cmp-add").click()
        expect(page.locator("#cmp-adapters")).to_contain_text(name)
    _choose(page, "cmp-x-kind", "lora_weight")
    _field(page, "cmp-x-values").fill("0, 1")
    _choose(page, "cmp-lora-target", "LoRA 2: soft")
    earlier = _grids(data_dir)
    _press_and_read(page, "#cmp-render", "images in")
    grid = _latest_grid(data_dir, earlier)
    assert grid["x"]["labels"] == ["soft weight 0", "soft weight 1"]
    assert grid["x"]["target"] == 1
    page.locator("#cmp-grid img").wait_for()
    page.locator("#cmp-slider img").first.wait_for(timeout=10_000)
    page.wait_for_timeout(500)  # the slider's images finish loading
    _assert_no_error_shown(page)
    _shot(page, "compare-1440")
    _shot(page, "compare-1440-full", full_page=True)

    narrow = open_page(800, 900)
    narrow.get_by_role("tab", name="Compare").click()
    narrow.locator("#cmp-best").wait_for()
    _shot(narrow, "compare-800")
    # on a narrow screen the results come after every control: asking for a grid brings them into view
    grid_top = narrow.locator("#cmp-grid").bounding_box()["y"]
    assert grid_top > 900, "the grid already sits in the first screen: this check would prove nothing"
    _choose(narrow, "cmp-run", f"{_label(data_dir, RUN_ID)} (finished, {len(STEPS)} checkpoints)")
    _press_and_read(narrow, "#cmp-best", "images in")
    narrow.locator("#cmp-grid img").wait_for()
    narrow.wait_for_timeout(800)  # the smooth scroll ends
    box = narrow.locator("#cmp-grid").bounding_box()
    assert 0 <= box["y"] < 900, f"the grid is out of view at y={box['y']}"
    _shot(narrow, "compare-800-after-compare")


def test_lists_follow_the_disk_and_a_refusal_is_one_sentence(open_page, stocked) -> None:
    data_dir = stocked["data_dir"]
    page = open_page(1440, 900)
    page.get_by_role("tab", name="Playground").click()
    assert "bold" in _options(page, "pg-lora-0")

    # a file added meanwhile is listed when the tab is opened again, with no "Refresh list"
    (data_dir / "loras" / "late.safetensors").write_bytes((data_dir / "loras" / "bold.safetensors").read_bytes())
    page.get_by_role("tab", name="Generate").click()
    page.get_by_role("tab", name="Playground").click()
    expect(page.locator("#pg-lora-0")).to_be_visible()
    deadline = time.time() + 15
    while "late" not in _options(page, "pg-lora-0"):
        assert time.time() < deadline, "the Playground did not list a new LoRA file when opened"
        page.wait_for_timeout(500)

    # a run that finishes while the Playground is open is listed there, with no click at all
    training = write_lora_run(data_dir / "runs", "20261206-100000-lora-cd34", steps=(1,), finished=False)
    page.wait_for_timeout(4000)  # the page has seen it training (it watches the data folder every few seconds)
    late_run = _label(data_dir, "20261206-100000-lora-cd34")
    assert late_run not in _options(page, "pg-lora-0")
    finish_run(training, data_dir / "loras" / "soft.safetensors")
    deadline = time.time() + 20
    while late_run not in _options(page, "pg-lora-0"):
        assert time.time() < deadline, "the Playground did not list the LoRA of a run that finished"
        page.wait_for_timeout(1000)

    # Compare lists every run with checkpoints as soon as it is opened
    page.get_by_role("tab", name="Compare").click()
    expect(page.locator("#cmp-best")).to_be_visible()
    runs = _options(page, "cmp-run")
    assert {
        f"{_label(data_dir, RUN_ID)} (finished, {len(STEPS)} checkpoints)",
        f"{late_run} (finished, 1 checkpoint)",
    } <= set(runs), runs

    # nothing (or nothing real) chosen: one sentence under the grid, no red badges
    _type_in(page, "cmp-run", "no-such-run")
    _press_and_read(page, "#cmp-best", "there is no run 'no-such-run'", timeout=30_000)
    _choose(page, "cmp-x-kind", "checkpoint")
    _press_and_read(page, "#cmp-render", "the checkpoint axis needs a run", timeout=30_000)
    # said where the person is looking: by the button pressed at the foot of the form, beside the grid
    assert _on_screen(page, "#cmp-status") and _on_screen(page, "#cmp-render")
    _assert_no_error_shown(page)
    _shot(page, "compare-refusal")


def test_a_reload_gives_back_the_tab_and_the_forms(open_page) -> None:
    page = open_page(1440, 900)
    page.locator("#ds-example-stars").click()  # opens the example dataset in the Dataset tab
    expect(page.locator("#ds-pick input")).to_have_value("example-stars", timeout=30_000)
    page.get_by_role("tab", name="Playground").click()
    _field(page, "pg-prompt").fill("a green diamond on a gray background")
    _field(page, "pg-prompt").press("Tab")
    page.locator("#pg-seed input").fill("7")
    page.locator("#pg-seed input").press("Tab")
    _choose(page, "pg-lora-1", "soft")
    page.locator("#pg-weight-1 input[type=number]").fill("0.6")
    page.locator("#pg-weight-1 input[type=number]").press("Tab")
    page.get_by_role("tab", name="Compare").click()
    _field(page, "cmp-prompt").fill("a yellow triangle on a black background")
    _field(page, "cmp-prompt").press("Tab")
    _choose(page, "cmp-x-kind", "steps")
    _field(page, "cmp-x-values").fill("2, 4")
    _field(page, "cmp-x-values").press("Tab")
    page.wait_for_timeout(1500)  # saved on change; give the last save its round trip

    page.reload()
    page.get_by_text("Diffusion Studio").first.wait_for()
    expect(page.get_by_role("tab", name="Compare")).to_have_attribute("aria-selected", "true", timeout=15_000)
    expect(_field(page, "cmp-prompt")).to_have_value("a yellow triangle on a black background", timeout=15_000)
    expect(_field(page, "cmp-x-kind")).to_have_value("steps")
    expect(_field(page, "cmp-x-values")).to_have_value("2, 4")
    page.get_by_role("tab", name="Playground").click()
    expect(_field(page, "pg-prompt")).to_have_value("a green diamond on a gray background", timeout=15_000)
    expect(page.locator("#pg-seed input")).to_have_value("7")
    # the stack is compacted: the one LoRA chosen comes back first, at its weight
    expect(_field(page, "pg-lora-0")).to_have_value("soft")
    expect(page.locator("#pg-weight-0 input[type=number]")).to_have_value("0.6")
    page.get_by_role("tab", name="Dataset").click()
    expect(page.locator("#ds-pick input")).to_have_value("example-stars", timeout=15_000)
    expect(page.locator("#ds-gallery img")).to_have_count(6)
    _assert_no_error_shown(page)
    _shot(page, "playground-after-reload")
