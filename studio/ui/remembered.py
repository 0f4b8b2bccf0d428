"""What a page reload gives back: the open tab and the forms of the Dataset, Playground and Compare tabs, kept in the
browser's localStorage with Gradio's own `gr.BrowserState` (each browser its own copy; nothing on the server).

Training needs none of this: its state is the run folder, which every page load reads again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from studio.data.dataset import list_datasets

STORAGE_PREFIX = "diffusion-studio-"
SECRET_FILE = ".browser-state-secret"


@dataclass
class Memory:
    """A form that a reload should give back."""

    key: str  # its name in the browser's storage
    watched: list  # the components whose changes are saved
    read: Callable[[dict], Any]  # their values (by component) -> what is saved (JSON); ValueError: nothing saved
    write: Callable[[Any], dict]  # what was saved -> updates by component (a subset of `outputs`)
    outputs: list


def secret(folder: Path) -> str:
    """The key the saved values are encrypted with. Kept in the data folder: Gradio's default, a new key at every
    start, would make a browser's memory unreadable after the studio restarts."""
    path = Path(folder) / SECRET_FILE
    try:
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(16), encoding="utf-8")
        return path.read_text(encoding="utf-8").strip()
    except OSError:  # a read-only data folder: remembered until the next restart only
        return secrets.token_hex(16)


def remember(
    loaded: gr.events.Dependency,
    memories: list[Memory],
    key_secret: str,
    tabs: gr.Tabs | None = None,
    by_id: dict[str, gr.Tab] | None = None,
) -> None:
    """Save each memory's components on every change, and the tab selected (`tabs`, its tabs `by_id`); after
    `loaded` (the page's load event) put them all back in one event, so a load waits on one more round trip, not
    one per form."""
    by_id = by_id or {}
    # saves wait until the page has its memory back: the first events of a load (the first tab selected, lists
    # filled) would otherwise overwrite it before it is read
    restored = gr.State(False)
    stores = {memory.key: _store(memory.key, key_secret) for memory in memories}
    for memory in memories:
        gr.on(
            [component.change for component in memory.watched],
            _saver(memory, restored),
            inputs={*memory.watched, restored},
            outputs=stores[memory.key],
            trigger_mode="always_last",
            show_progress="hidden",
            concurrency_limit=None,
            api_visibility="private",
        )
    tab_store = _store("tab", key_secret)
    for tab_id, tab in by_id.items():
        tab.select(
            lambda done, chosen=tab_id: chosen if done else gr.skip(),
            restored, tab_store, show_progress="hidden", concurrency_limit=None, api_visibility="private",
        )  # fmt: skip

    def restore(values: dict) -> dict:
        out = {restored: True}
        for memory in memories:
            saved = values[stores[memory.key]]
            try:
                out |= memory.write(saved) if saved else {}
            except (ValueError, KeyError, TypeError, AttributeError):  # saved by an older version: start afresh
                pass
        if tabs is not None and values[tab_store] in by_id:
            out[tabs] = gr.Tabs(selected=values[tab_store])
        return out

    outputs = [restored, *(c for memory in memories for c in memory.outputs), *([tabs] if tabs is not None else [])]
    loaded.then(restore, {*stores.values(), tab_store}, outputs, show_progress="hidden", api_visibility="private")


def _store(key: str, key_secret: str) -> gr.BrowserState:
    return gr.BrowserState(None, storage_key=STORAGE_PREFIX + key, secret=key_secret)


def _saver(memory: Memory, restored: gr.State) -> Callable[[dict], Any]:
    def save(values: dict):
        if not values[restored]:
            return gr.skip()
        try:
            return memory.read(values)
        except ValueError:  # e.g. a path the form would refuse: keep what was saved before
            return gr.skip()

    return save


def dataset_memory(picked: gr.Dropdown, workspaces) -> Memory:
    """The dataset open in the Dataset tab, opened again after a reload if it is still there."""

    def write(name) -> dict:
        names = list_datasets(workspaces.get().datasets_root)
        return {picked: gr.Dropdown(choices=names, value=name)} if name in names else {}

    return Memory("dataset", [picked], lambda values: values[picked] or gr.skip(), write, [picked])
