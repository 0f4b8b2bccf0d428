"""The Train tab's queue: add the form's config (optionally a sweep), watch the queue, start / stop it, remove an
entry, and compare a sweep's scorecards side by side.

Thin: every action is a function of `studio.queue`; the work happens in the workspace's server-side queue
worker, and the tables are read from the queue file and run folders on each tick, so a reload shows the same queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from studio.queue import add_entries, remove_entry, retry_entry
from studio.queue.plan import parse_sweep_lines
from studio.queue.table import QUEUE_HEADERS, queue_rows, sweep_table
from studio.train.config import RunConfig
from studio.ui.errors import as_message
from studio.workspace import Workspace, Workspaces

# ------------------------------------------------------------------ handlers (no components: tested directly)


def add_to_queue(ws: Workspace, config: RunConfig, dataset_choice: str | None, sweep_text: str = "") -> str:
    if not dataset_choice:
        raise ValueError("choose a dataset to train on (make one in the Dataset tab)")
    ws.check_training(config)
    added = add_entries(ws.queue.store, config, [ws.training_source(dataset_choice)], parse_sweep_lines(sweep_text))
    entries = "1 entry" if len(added) == 1 else f"{len(added)} entries"
    return f"Queued {entries} as **{added[0].sweep}**. Press **Run queue** to train them one after another."


def queue_frame(ws: Workspace) -> pd.DataFrame:
    return pd.DataFrame(queue_rows(ws.queue.store.load(), ws.runs_root), columns=QUEUE_HEADERS)


def sweep_ids(ws: Workspace) -> list[str]:
    return list(dict.fromkeys(e.sweep for e in ws.queue.store.load().entries))


def sweep_frame(ws: Workspace, sweep_id: str | None) -> pd.DataFrame | None:
    if not sweep_id or sweep_id not in sweep_ids(ws):
        return None
    headers, rows = sweep_table(ws.queue.store.load().sweep(sweep_id), ws.runs_root)
    return pd.DataFrame(rows, columns=headers)


def entry_number(value: float | int | None) -> int:
    if value is None or int(value) != value or value < 1:
        raise ValueError("type the number (#) of an entry from the queue table")
    return int(value)


def picked_entry(event: gr.SelectData) -> int | None:
    """A click on a row of the queue table picks that entry for Remove / Retry."""
    row = event.row_value or []
    return int(row[0]) if row and str(row[0]).isdigit() else None


# ------------------------------------------------------------------ layout and wiring


@dataclass
class _Controls:
    """The panel's components by name."""

    sweep_box: gr.Textbox
    status: gr.Markdown
    run: gr.Button
    stop: gr.Button
    entry: gr.Number
    remove: gr.Button
    retry: gr.Button
    message: gr.Markdown
    table: gr.Dataframe
    sweep: gr.Dropdown
    sweep_view: gr.Dataframe
    shown: gr.State  # what the tables show; an unchanged tick re-sends nothing

    @property
    def ticked(self) -> list:
        """What a tick of the queue's view updates."""
        return [self.status, self.table, self.sweep, self.sweep_view, self.shown]


def build(
    workspaces: Workspaces,
    add: gr.Button,
    config_of: Callable[[dict], RunConfig],
    form_inputs: set,
    dataset: gr.Dropdown,
    loaded: gr.events.Dependency,
) -> None:
    """Below the Train tab's form and run view; `add` is the "Add to queue" button beside Start."""
    with gr.Accordion("Queue: trainings one after another, sweeps compared", open=True, elem_id="queue-panel"):
        ui = _lay_out()
    timer = gr.Timer(2.0, active=False)
    handlers = _Handlers(ui, workspaces)

    @as_message
    def on_add(values: dict):
        return add_to_queue(workspaces.get(), config_of(values), values[dataset], values[ui.sweep_box])

    tick = (handlers.on_tick, [ui.sweep, ui.shown], ui.ticked)
    add.click(on_add, form_inputs | {dataset, ui.sweep_box}, ui.message, api_visibility="private").then(
        *tick, api_visibility="private"
    )
    ui.run.click(handlers.on_run, None, ui.message, api_visibility="private")
    ui.stop.click(handlers.on_stop, None, ui.message, api_visibility="private")
    ui.remove.click(handlers.on_remove, ui.entry, ui.message, api_visibility="private")
    ui.retry.click(handlers.on_retry, ui.entry, ui.message, api_visibility="private")
    ui.table.select(picked_entry, None, ui.entry, api_visibility="private")
    ui.sweep.input(handlers.on_sweep, ui.sweep, ui.sweep_view, api_visibility="private")
    timer.tick(*tick, show_progress="hidden", queue=False, api_visibility="private")
    loaded.then(*tick, api_visibility="private").then(
        lambda: gr.Timer(active=True), None, timer, api_visibility="private"
    )


def _lay_out() -> _Controls:
    with gr.Row():
        sweep_box = gr.Textbox(
            label="Sweep (optional)", lines=1, scale=3, elem_id="queue-sweep",
            placeholder="learning_rate=1e-3,2e-3; rank=8,16",
            info="One key=values per line or separated by ';'. Add to queue then queues every combination.",
        )  # fmt: skip
        status = gr.Markdown(elem_id="queue-status")
    with gr.Row():
        run = gr.Button("▶ Run queue", variant="primary", scale=0, elem_id="queue-run")
        stop = gr.Button("■ Stop queue", variant="stop", scale=0, elem_id="queue-stop")
        entry = gr.Number(
            None, label="Entry #", placeholder="click a row", precision=0, minimum=1, scale=0, min_width=110,
            elem_id="queue-entry",
        )  # fmt: skip
        remove = gr.Button("Remove entry", scale=0, elem_id="queue-remove")
        retry = gr.Button("Retry entry", scale=0, elem_id="queue-retry")
    message = gr.Markdown(elem_id="queue-message")
    table = gr.Dataframe(
        headers=QUEUE_HEADERS, interactive=False, wrap=True, label="Queue (in order)", elem_id="queue-table"
    )
    with gr.Row():
        sweep = gr.Dropdown([], label="Sweep", scale=1, elem_id="queue-sweep-pick")
        gr.Markdown("One row per entry: its swept values, final loss, and the best checkpoint's scorecard.")
    sweep_view = gr.Dataframe(interactive=False, label="Sweep: scorecards side by side", elem_id="queue-sweep-table")
    return _Controls(sweep_box, status, run, stop, entry, remove, retry, message, table, sweep, sweep_view,
                     gr.State(None))  # fmt: skip


class _Handlers:
    def __init__(self, ui: _Controls, workspaces: Workspaces) -> None:
        self.ui, self.workspaces = ui, workspaces

    @as_message
    def on_run(self):
        return self.workspaces.get().queue.start()

    @as_message
    def on_stop(self):
        return self.workspaces.get().queue.stop()

    @as_message
    def on_remove(self, number):
        return remove_entry(self.workspaces.get().queue.store, entry_number(number))

    @as_message
    def on_retry(self, number):
        return retry_entry(self.workspaces.get().queue.store, entry_number(number))

    def on_sweep(self, picked: str | None):
        return sweep_frame(self.workspaces.get(), picked)

    def on_tick(self, picked: str | None, before) -> dict:
        ui, ws = self.ui, self.workspaces.get()
        ids = sweep_ids(ws)
        picked = picked if picked in ids else (ids[-1] if ids else None)
        frames = (queue_frame(ws), sweep_frame(ws, picked))
        signature = (ws.queue.describe(), frames[0].to_json(), None if frames[1] is None else frames[1].to_json(), ids)
        if signature == before:
            return {component: gr.skip() for component in ui.ticked}
        return {ui.status: signature[0], ui.table: frames[0], ui.sweep: gr.Dropdown(choices=ids, value=picked),
                ui.sweep_view: frames[1], ui.shown: signature}  # fmt: skip
