"""Public mode in a real browser: two visitors (two browser profiles) never see each other's datasets, and a
visitor who reloads the page finds their own again (the visitor id stays in the browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _visitor(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Dataset").click()
    return context, page


def _dataset_choices(page) -> list[str]:
    page.locator("#ds-pick input").click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return [o.strip().removeprefix("✓").strip() for o in options]  # ✓ marks the chosen one


def test_two_visitors_have_their_own_datasets(browser, public_server, tmp_path):
    from studio.pocket.world import Scene, render

    image = tmp_path / "circle.png"
    render(Scene("circle", "red", "black"), 64).save(image)
    alice_context, alice = _visitor(browser, public_server["url"])
    bob_context, bob = _visitor(browser, public_server["url"])
    try:
        alice.locator("#ds-name textarea, #ds-name input").first.fill("alices-shapes")
        alice.locator("#ds-upload input[type=file]").set_input_files([str(image)])
        alice.locator("#ds-upload").get_by_text("circle").wait_for(timeout=30_000)
        alice.locator("#ds-import").click()
        alice.locator("#ds-message").get_by_text("1 accepted").wait_for(timeout=60_000)

        visitors = sorted(p.name for p in (Path(public_server["data_dir"]) / "visitors").iterdir())
        owner = [v for v in visitors if (Path(public_server["data_dir"]) / "visitors" / v / "datasets").is_dir()]
        assert len(owner) == 1, visitors
        # two visitors, two workspaces: even the clicks made before the page had bound its session found theirs
        assert len(visitors) == 2, visitors

        bob.reload()
        bob.get_by_role("tab", name="Dataset").click()
        bob.wait_for_timeout(1500)
        assert "alices-shapes" not in _dataset_choices(bob)

        alice.reload()  # a new session: the browser's visitor id leads back to the same workspace
        alice.get_by_role("tab", name="Dataset").click()
        expect(alice.locator("#ds-pick")).to_be_visible()
        alice.wait_for_timeout(1500)
        assert "alices-shapes" in _dataset_choices(alice)
    finally:
        alice_context.close()
        bob_context.close()
