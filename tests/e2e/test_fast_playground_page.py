"""The Playground's "Fast (LCM, 4 steps)" switch: the form follows, the image is made with the LCM-LoRA.

The screenshot goes to $STUDIO_TEST_ARTIFACTS (default tmp/artifacts/) for a person to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from studio.generate.png_metadata import read_params
from studio.paths import PROJECT_ROOT

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(os.environ.get("STUDIO_TEST_ARTIFACTS", PROJECT_ROOT / "tmp" / "artifacts"))


def test_fast_switch_sets_lcm_four_steps_and_generates_with_the_lcm_lora(page, studio_server):
    page.get_by_text("Diffusion Studio").first.wait_for()
    page.get_by_role("tab", name="Playground").click()
    page.locator("#pg-count input[type=number]").fill("4")
    page.locator("#pg-fast input[type=checkbox]").check()
    page.wait_for_function("document.querySelector('#pg-steps input[type=number]').value === '4'", timeout=30_000)
    assert page.locator("#pg-guidance input[type=number]").input_value() == "1"
    assert "LCM" in page.locator("#pg-sampler input").input_value()

    earlier = set((studio_server["data_dir"] / "outputs").glob("*.png"))  # other page tests share the server
    page.locator("#pg-generate").click()
    page.locator("#pg-status").get_by_text("fast: LCM-LoRA included").wait_for(timeout=90_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-fast.png"), full_page=True)
    saved = sorted(set((studio_server["data_dir"] / "outputs").glob("*.png")) - earlier)
    assert len(saved) == 4
    params = read_params(saved[0])
    assert (params["fast"], params["sampler"], params["steps"], params["guidance"]) == (True, "lcm", 4, 1.0)

    # switching it off gives the model's defaults back
    page.locator("#pg-fast input[type=checkbox]").uncheck()
    page.wait_for_function("document.querySelector('#pg-steps input[type=number]').value === '25'", timeout=30_000)
