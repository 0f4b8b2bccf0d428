"""A designer's first LoRA in a real browser: upload shapes-world images, caption them with the pocket captioner,
train a pocket LoRA for a few dozen steps, watch the chart and samples (also after a reload), find the run in Runs,
score it, and compare its checkpoints in one click.

Screenshots of every step go to $STUDIO_TEST_ARTIFACTS (default tmp/artifacts/) for a person to look at.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from studio.generate.png_metadata import read_params
from studio.paths import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = Path(os.environ.get("STUDIO_TEST_ARTIFACTS", PROJECT_ROOT / "tmp" / "artifacts"))
STEPS = 40


def _shot(page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def _field(page, elem_id: str):
    return page.locator(f"#{elem_id} input, #{elem_id} textarea").first


def _step_of(page) -> int:
    match = re.search(r"step (\d+) / ", page.locator("#train-status").inner_text())
    return int(match.group(1)) if match else -1


def _drawn_lines(page, elem_id: str) -> dict[str, int]:
    """The lines a chart really draws: stroke colour -> points on that line.

    Vega renders every series as one SVG path, a "line mark"; a path without a stroke colour (what a
    colour scale with an empty domain gives) is invisible however many points it has, so it does not count.
    """
    return page.evaluate(
        """(id) => {
            const out = {};
            for (const path of document.querySelectorAll(`#${id} path[aria-roledescription='line mark']`)) {
                const stroke = path.getAttribute('stroke');
                const points = ((path.getAttribute('d') || '').match(/[ML]/g) || []).length;
                if (stroke && stroke !== 'none' && stroke !== 'transparent' && points >= 2) out[stroke] = points;
            }
            return out;
        }""",
        elem_id,
    )


def _assert_no_error_shown(page) -> None:
    """No Gradio error on screen: neither a component's red "Error" badge nor an error toast."""
    shown = page.evaluate(
        """() => [...document.querySelectorAll('.error')]
            .filter((e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')
            .map((e) => e.innerText.trim())"""
    )
    assert not shown, f"errors on screen: {shown}"


def _assert_loss_chart_draws(page) -> None:
    """Both series (raw and smoothed, each its own colour) drawn with at least two points, and the lr line."""
    page.wait_for_timeout(1200)  # the chart redraws within a tick of new data
    lines = _drawn_lines(page, "train-loss")
    if set(lines) != {"#b8c4d6", "#2563eb"}:
        (ARTIFACTS / "loss.html").write_text(page.locator("#train-loss").inner_html())
    assert set(lines) == {"#b8c4d6", "#2563eb"}, f"loss chart draws {lines}"
    assert min(lines.values()) >= 2, lines
    assert _drawn_lines(page, "train-lr"), "the learning-rate chart draws no line"


def test_upload_caption_train_reload_and_find_the_run(page, studio_server, shape_files):
    # 1. Dataset: drop the images, with a trigger word
    page.get_by_role("tab", name="Dataset").click()
    _field(page, "ds-name").fill("shapes")
    _field(page, "ds-trigger").fill("zq")
    page.locator("#ds-upload input[type=file]").set_input_files(shape_files)
    page.locator("#ds-upload").get_by_text("My Shape 4").wait_for(timeout=30_000)
    page.locator("#ds-import").click()
    page.locator("#ds-message").get_by_text("5 accepted, 0 rejected").wait_for(timeout=60_000)
    assert page.locator("#ds-gallery img").count() == 5
    _shot(page, "1-dataset-uploaded")

    # 2. Caption with the pocket captioner: the captions say what the images show, after the trigger
    page.locator("#ds-caption").click()
    page.locator("#ds-caption-message").get_by_text("5 captioned").wait_for(timeout=60_000)
    page.locator("#ds-captions").get_by_text("zq, a red circle on a black background").wait_for(timeout=10_000)
    _shot(page, "2-dataset-captioned")

    # 3. Train: the pocket LoRA preset, a few dozen steps, a sample every 10
    page.get_by_role("tab", name="Train").click()
    expect(page.locator("#train-dataset input")).to_have_value("shapes", timeout=10_000)
    page.locator("#cfg-training-steps input").fill(str(STEPS))
    page.locator("#cfg-training-sample_every input").fill("10")
    page.locator("#cfg-training-sample_every input").press("Tab")
    # samples, and the scorecard below (which draws at the run's sample steps), at 10 denoising steps: this test
    # proves the loop, not the pictures, and scoring two models at 20 steps was over half of its time
    page.locator("#train-advanced button").first.click()
    page.locator("#cfg-training-sample_steps input").fill("10")
    page.locator("#cfg-training-sample_steps input").press("Tab")
    page.locator("#train-advice").get_by_text("Estimate:").wait_for(timeout=10_000)
    page.locator("#train-start").click()
    page.locator("#train-message").get_by_text("Started shapes · LoRA").wait_for(timeout=30_000)
    run_id = re.search(r"\(run (\S+)\)", page.locator("#train-message").inner_text()).group(1)
    label = "shapes · LoRA · trigger zq"  # its name (dataset and method) and trigger, in every list

    # a second Start while it runs is refused with a sentence
    page.locator("#train-start").click()
    page.locator("#train-message").get_by_text("one training job at a time").wait_for(timeout=10_000)
    _assert_no_error_shown(page)

    # 4. The chart gains points and a validation sample appears
    page.wait_for_function("() => /step [1-9]\\d* \\//.test(document.querySelector('#train-status').innerText)",
                           timeout=90_000)  # fmt: skip
    first = _step_of(page)
    page.locator("#train-samples img").first.wait_for(timeout=90_000)
    page.wait_for_timeout(1500)
    later = _step_of(page)
    assert later > first >= 1
    _assert_loss_chart_draws(page)
    _assert_no_error_shown(page)
    _shot(page, "3-training-live")

    # 5. Reload mid-run: the same run, the same chart and samples, from the run folder
    assert later < STEPS, "the run finished before the reload; the reload must happen mid-run"
    page.reload()
    page.get_by_role("tab", name="Train").click()
    # a reload restores the page first (tab and forms, from the browser), then reattaches the run
    page.locator("#train-status").get_by_text(run_id).wait_for(timeout=30_000)
    assert _step_of(page) >= later
    # the form shows the run's own settings, not the preset's (lora-pocket trains 300 steps, samples every 100)
    expect(page.locator("#cfg-training-steps input")).to_have_value(str(STEPS), timeout=10_000)
    expect(page.locator("#cfg-training-sample_every input")).to_have_value("10")
    expect(page.locator("#cfg-training-sample_prompts textarea")).to_have_value(re.compile("zq"))
    expect(page.locator("#train-dataset input")).to_have_value("shapes")
    page.locator("#train-samples img").first.wait_for(timeout=10_000)
    _assert_loss_chart_draws(page)
    _assert_no_error_shown(page)
    _shot(page, "4-after-reload")

    # 6. It finishes; the Runs tab lists it with its final sample and offers its outputs
    page.locator("#train-status").get_by_text("finished").wait_for(timeout=120_000)
    _assert_loss_chart_draws(page)
    _assert_no_error_shown(page)
    _shot(page, "5-training-finished")
    page.get_by_role("tab", name="Runs").click()
    expect(page.locator("#runs-table")).to_contain_text(run_id, timeout=10_000)
    expect(page.locator("#runs-table")).to_contain_text("finished")
    assert page.locator("#runs-finals img").count() >= 1
    page.locator("#runs-pick input").click()
    page.get_by_role("option", name=label).click()
    page.locator("#runs-files").get_by_text("lora-kohya").wait_for(timeout=30_000)
    _shot(page, "6-runs-tab")
    assert (studio_server["data_dir"] / "runs" / run_id / "outputs" / "lora-kohya.safetensors").is_file()

    # 7. Score it: the scorecard names the best checkpoint (base model vs the final step), draws a line per score
    page.locator("#runs-score-verdict").get_by_text("Not scored yet").wait_for(timeout=10_000)
    page.locator("#runs-score").click()
    page.locator("#runs-score-verdict").get_by_text("Best checkpoint").wait_for(timeout=180_000)
    expect(page.locator("#runs-score-table")).to_contain_text("base")
    expect(page.locator("#runs-score-table")).to_contain_text(str(STEPS))
    page.wait_for_timeout(1200)
    assert len(_drawn_lines(page, "runs-score-chart")) >= 3, "the scorecard chart draws fewer than 3 scores"
    _assert_no_error_shown(page)
    _shot(page, "7-runs-scorecard")
    assert (studio_server["data_dir"] / "runs" / run_id / "eval" / "scorecard.json").is_file()

    # 8. "Which checkpoint is best?" in one click: the Compare tab draws the run's checkpoints on its sample prompts,
    # beside the scorecard just saved
    page.get_by_role("tab", name="Compare").click()
    page.locator("#cmp-refresh").click()
    page.locator("#cmp-run input").click()
    page.get_by_role("option", name=re.compile(re.escape(label))).click()
    page.locator("#cmp-score-verdict").get_by_text("Best checkpoint").wait_for(timeout=10_000)
    expect(page.locator("#cmp-score-table")).to_contain_text(str(STEPS))
    page.locator("#cmp-best").click()
    page.locator("#cmp-status").get_by_text("images in").wait_for(timeout=120_000)
    page.locator("#cmp-grid img").wait_for()
    page.locator("#cmp-slider img").first.wait_for(timeout=10_000)
    _assert_no_error_shown(page)
    page.mouse.wheel(0, -5000)
    _shot(page, "8-compare-checkpoints", full_page=False)  # the window's view: its results column sticks in it
    grids = sorted((studio_server["data_dir"] / "outputs" / "grids").glob("grid-*.png"))
    grid = read_params(grids[-1])["grid"]
    assert grid["x"]["kind"] == "checkpoint" and grid["y"]["kind"] == "prompt"
    assert grid["x"]["labels"][0] == "base model" and grid["x"]["labels"][-1] == f"step {STEPS}", grid["x"]["labels"]
    assert all(Path(v).parent.parent == studio_server["data_dir"] / "runs" / run_id for v in grid["x"]["values"][1:])
