"""A person opens the studio, types a prompt, clicks Generate and gets the image they asked for."""

from __future__ import annotations

import pytest
from PIL import Image

from studio.generate.png_metadata import read_params
from studio.pocket.evaluator import judge

pytestmark = pytest.mark.e2e

PROMPT = "a yellow triangle on a black background"


def test_generate_tab_makes_the_prompted_image(page, studio_server, tmp_path):
    page.get_by_text("Diffusion Studio").first.wait_for()
    earlier = set((studio_server["data_dir"] / "outputs").glob("*.png"))  # other page tests share the server
    page.get_by_role("tab", name="Generate").click()
    prompt = page.locator("#gen-prompt textarea")
    prompt.fill(PROMPT)
    page.locator("#gen-button").click()

    status = page.locator("#gen-status")
    status.get_by_text("image(s) in").wait_for(timeout=90_000)
    images = page.locator("#gen-gallery img")
    assert images.count() == 4
    page.screenshot(path=str(tmp_path / "generate.png"), full_page=True)

    saved = sorted(set((studio_server["data_dir"] / "outputs").glob("*.png")) - earlier)
    assert len(saved) == 4
    params = [read_params(p) for p in saved]
    assert {p["prompt"] for p in params} == {PROMPT}
    assert sorted(p["seed"] for p in params) == [0, 1, 2, 3]
    # the images are what the prompt asked for (the pocket model is good, not perfect: 3 of 4)
    verdicts = [judge(Image.open(p)) for p in saved]
    assert sum(v.matches("triangle", "yellow", "black") for v in verdicts) >= 3, verdicts


def test_bad_input_shows_a_clear_error_and_keeps_the_form(page):
    page.get_by_role("tab", name="Generate").click()
    page.locator("#gen-prompt textarea").fill("   ")
    page.locator("#gen-button").click()
    page.get_by_text("the prompt is empty").first.wait_for(timeout=30_000)
    assert page.locator("#gen-model input, #gen-model textarea").first.input_value() == "pocket"


def test_the_page_loads_nothing_from_outside_this_machine(browser, studio_server):
    from urllib.parse import urlparse

    context = browser.new_context()
    page = context.new_page()
    hosts = set()
    page.on("request", lambda request: hosts.add(urlparse(request.url).hostname))
    page.goto(studio_server["url"])
    page.get_by_role("tab", name="Generate").click()
    page.locator("#gen-button").wait_for()
    page.wait_for_timeout(3000)  # Gradio keeps a live connection open, so "network idle" never comes
    context.close()
    assert hosts <= {"127.0.0.1", "localhost", None}, hosts
