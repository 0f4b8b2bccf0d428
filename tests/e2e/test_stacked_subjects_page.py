"""Two subject LoRAs stacked in the Playground, as a designer stacks them: each prompt draws the subject its trigger
asks for, on the background it asks for, and a prompt naming neither stays the base model's (issue 18).

The LoRAs are real pocket runs (`two_subject_runs`: purple stars "zq", green hearts "vx"; trained once per session
and shared with tests/generate/test_stacked_pocket_loras.py). Every image the Playground saves is judged on shape,
colour and background.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect
from studio_server import free_port, serve

from studio.generate.png_metadata import read_params
from studio.paths import PROJECT_ROOT
from studio.pocket.evaluator import judge

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
COUNT = 4
ARTIFACTS = Path(os.environ.get("STUDIO_TEST_ARTIFACTS", PROJECT_ROOT / "tmp" / "artifacts"))


@pytest.fixture(scope="module")
def stacked_studio(tmp_path_factory, two_subject_runs):
    data = tmp_path_factory.mktemp("stacked-data")
    for run_dir in two_subject_runs.values():
        shutil.copytree(run_dir, data / "runs" / run_dir.name)
    port = free_port()
    yield from serve(data, ["app.py"], port, env={"PORT": str(port)})


def _shot(page, name: str) -> None:
    """A screenshot for the README once the page has settled: no toast over it, the gallery's fade-in done."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => document.querySelectorAll('.toast-wrap').forEach((toast) => toast.remove())")
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _choose_containing(page, elem_id: str, words: str) -> str:
    """Pick the option of a Gradio dropdown whose label holds `words`, as a person does; returns the label."""
    page.locator(f"#{elem_id} input").click()
    option = page.get_by_role("option").filter(has_text=words).first
    label = option.inner_text().strip()
    option.click()
    page.get_by_role("option").first.wait_for(state="detached", timeout=5_000)
    return label


def _generate(page, data_dir, prompt: str) -> list:
    """Type `prompt`, press Generate, and judge the images it saved (read back from their PNGs)."""
    import time

    from PIL import Image

    earlier = set((data_dir / "outputs").glob("*.png"))
    page.locator("#pg-prompt textarea").fill(prompt)
    page.locator("#pg-generate").click()
    deadline = time.monotonic() + 180
    while len(saved := sorted(set((data_dir / "outputs").glob("*.png")) - earlier)) < COUNT:
        assert time.monotonic() < deadline, f"{len(saved)} of {COUNT} images saved for {prompt!r}"
        page.wait_for_timeout(500)
    page.locator("#pg-status").get_by_text(f"{COUNT} image(s)").wait_for(timeout=30_000)
    assert all(read_params(path)["prompt"] == prompt for path in saved)
    return [judge(Image.open(path).convert("RGB")) for path in saved]


def test_two_stacked_subject_loras_each_draw_where_their_prompt_asks(browser, stacked_studio) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(stacked_studio["url"])
    page.get_by_role("tab", name="Playground").click()
    page.locator("#pg-count input[type=number]").fill(str(COUNT))
    page.locator("#pg-steps input[type=number]").fill("20")
    assert "trigger zq" in _choose_containing(page, "pg-lora-0", "trigger zq")
    assert "trigger vx" in _choose_containing(page, "pg-lora-1", "trigger vx")
    # the default way to stack: each LoRA on the prompts that say its trigger
    assert page.locator("#pg-stacking input[value=scoped]").is_checked()

    asks = {
        "a purple zq on a black background": ("star", "purple", "black"),
        "a green vx on a brown background": ("heart", "green", "brown"),  # a background neither LoRA saw
        "a red circle on a black background": ("circle", "red", "black"),
    }
    for prompt, wanted in asks.items():
        judged = _generate(page, stacked_studio["data_dir"], prompt)
        # both LoRAs stay on; the status says how many act on this prompt (its trigger's, or none)
        acting = "" if "circle" not in prompt else ", 0 acting on this prompt"
        expect(page.locator("#pg-status")).to_contain_text(f"2 LoRA(s) on{acting or ', 1 acting on this prompt'}")
        right = sum(j.matches(*wanted) for j in judged)
        assert right >= COUNT - 1, (prompt, [(j.shape, j.color, j.background) for j in judged])
        if "vx" in prompt:  # for the README: two LoRAs on, the heart's prompt drawn on a background it never saw
            _shot(page, "playground-stacked")

    # one click in Compare: the stack, then each LoRA alone, then none, on the Playground's prompt and seed
    page.locator("#pg-send").click()
    page.get_by_role("tab", name="Compare").click()
    grids = stacked_studio["data_dir"] / "outputs" / "grids"
    earlier = set(grids.glob("grid-*.png"))
    page.locator("#cmp-prompt textarea").fill("a purple zq on a black background")
    page.locator("#cmp-stack-alone").click()
    page.locator("#cmp-status").get_by_text("images in").wait_for(timeout=120_000)
    grid = read_params(sorted(set(grids.glob("grid-*.png")) - earlier)[-1])["grid"]
    labels = grid["x"]["labels"]
    assert labels[0] == "stacked" and labels[-1] == "no LoRA", labels
    assert [label.endswith(" alone") for label in labels[1:-1]] == [True, True], labels
    assert "trigger zq" in labels[1] and "trigger vx" in labels[2], labels
    page.locator("#cmp-grid img").wait_for()
    _shot(page, "compare-stacked-vs-alone")
    context.close()
