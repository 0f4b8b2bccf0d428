"""A first visit with no images to hand: one click on an example makes a dataset the Train tab offers."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_one_click_makes_an_example_dataset_ready_to_train(page):
    page.get_by_role("tab", name="Dataset").click()
    page.locator("#ds-example-stars").click()
    expect(page.locator("#ds-message")).to_contain_text("lora-pocket", timeout=30_000)
    expect(page.locator("#ds-gallery img")).to_have_count(5)
    expect(page.locator("#ds-trigger textarea, #ds-trigger input").first).to_have_value("zq")
    expect(page.locator("#ds-pick input")).to_have_value("example-stars")
    expect(page.locator("#ds-captions")).to_contain_text("a zq on a black background")

    page.get_by_role("tab", name="Train").click()
    page.locator("#train-dataset input").click()
    expect(page.get_by_role("option", name="example-stars")).to_be_visible()
    page.keyboard.press("Escape")
