"""A first visit with no images to hand: one click on an example makes a dataset the Train tab offers."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_one_click_makes_an_example_dataset_ready_to_train(page):
    page.get_by_role("tab", name="Dataset").click()
    page.locator("#ds-example-stars").click()
    expect(page.locator("#ds-message")).to_contain_text("lora-pocket", timeout=30_000)
    expect(page.locator("#ds-gallery img")).to_have_count(6)
    expect(page.locator("#ds-trigger textarea, #ds-trigger input").first).to_have_value("zq")
    expect(page.locator("#ds-pick input")).to_have_value("example-stars")
    expect(page.locator("#ds-captions")).to_contain_text("a purple zq on a black background")

    page.get_by_role("tab", name="Train").click()
    page.locator("#train-dataset input").click()
    expect(page.get_by_role("option", name="example-stars")).to_be_visible()
    page.keyboard.press("Escape")


def test_the_train_tab_offers_the_dataset_just_made_and_keeps_a_pick_made_there(page):
    """The Train tab offers the dataset just made or opened in the Dataset tab, not the one it showed before."""
    dataset_field = page.locator("#train-dataset input")
    for key in ("stars", "pink-style"):  # the second one made while the Train tab shows the first
        page.get_by_role("tab", name="Dataset").click()
        page.locator(f"#ds-example-{key}").click()
        expect(page.locator("#ds-pick input")).to_have_value(f"example-{key}", timeout=30_000)
        page.get_by_role("tab", name="Train").click()
        expect(dataset_field).to_have_value(f"example-{key}", timeout=10_000)

    # a different pick in the Train tab survives a look at the Dataset tab
    dataset_field.click()
    page.get_by_role("option", name="example-stars", exact=True).click()
    page.get_by_role("tab", name="Dataset").click()
    page.get_by_role("tab", name="Train").click()
    page.wait_for_timeout(1500)  # the tab's refresh has answered
    expect(dataset_field).to_have_value("example-stars")

    # a copy prepared in the Dataset tab (of the dataset open there, example-pink-style) is offered next
    page.get_by_role("tab", name="Dataset").click()
    page.locator("#ds-prepare").click()
    expect(page.locator("#ds-prepare-message")).to_contain_text("the Train tab offers it", timeout=30_000)
    page.get_by_role("tab", name="Train").click()
    expect(dataset_field).to_have_value(re.compile(r"^example-pink-style \(prepared center-\d+\)$"), timeout=10_000)
