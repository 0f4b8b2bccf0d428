"""Entries queued from a terminal show up in the Train tab's queue; a click on a row picks it, Remove takes it out."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from studio.queue import QueueStore, add_entries
from studio.queue.plan import parse_sweeps
from studio.train.config import resolve_config

pytestmark = pytest.mark.e2e


def test_the_queue_panel_shows_the_queue_and_removes_a_clicked_entry(page, studio_server, tmp_path):
    from studio.pocket.world import Scene, render

    for index, background in enumerate(("black", "white")):
        render(Scene("star", "yellow", background), 64).save(tmp_path / f"star{index}.png")
        (tmp_path / f"star{index}.txt").write_text(f"a zq on a {background} background", encoding="utf-8")
    config = resolve_config(preset="lora-pocket", overrides={"steps": "2", "sample_prompts": '["a zq"]'})
    store = QueueStore(studio_server["data_dir"])  # other page tests share the server: nothing here is run
    kept, removed = add_entries(store, config, [tmp_path], parse_sweeps(["rank=4,8"]), evaluate=False)

    page.get_by_role("tab", name="Train").click()
    table = page.locator("#queue-table")
    expect(table).to_contain_text("rank=8", timeout=30_000)  # the timer brought it in
    expect(page.locator("#queue-status")).to_contain_text("2 queued")
    table.get_by_role("gridcell").filter(has_text="rank=8").first.click()
    expect(page.locator("#queue-entry input")).to_have_value(str(removed.id))
    page.locator("#queue-remove").click()
    expect(page.locator("#queue-message")).to_contain_text(f"removed entry {removed.id}")
    assert [e.id for e in store.load().entries if e.sweep == kept.sweep] == [kept.id]
    expect(table).not_to_contain_text("rank=8", timeout=10_000)
