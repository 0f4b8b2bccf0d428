"""Runs tab: every run with its status, method, dataset, key settings and final sample; open one to see its chart
and samples again, score its checkpoints (the scorecard), resume it, delete it (after a confirmation) or download
its outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from studio import runs
from studio.evaluate import evaluate_run
from studio.runs import names as run_names
from studio.runs.downloads import delete_run, download_files
from studio.train import monitor
from studio.train.which_file import WHICH_FILE_FOR_WHICH_TOOL
from studio.ui.errors import as_message, friendly
from studio.ui.run_view import STATUS_WORDS, RunView
from studio.ui.scorecard_view import ScorecardView
from studio.ui.tab import Answer, BuiltTab
from studio.workspace import Workspace, Workspaces

COLUMNS = ["run", "status", "method", "dataset", "step", "last loss", "id", "settings"]


def summaries(ws: Workspace) -> list[monitor.RunSummary]:
    """Newest first."""
    if not ws.runs_root.is_dir():
        return []
    folders = sorted((f for f in ws.runs_root.iterdir() if (f / runs.CONFIG).is_file()), reverse=True)
    return [monitor.summarise(folder) for folder in folders]


def table_rows(items: list[monitor.RunSummary]) -> list[list]:
    rows = []
    for s in items:
        settings = ", ".join(f"{k} {v}" for k, v in s.settings.items() if k != "base_model")
        if s.settings.get("base_model") not in (None, "pocket"):
            settings += f", model {s.settings['base_model']}"
        loss = f"{s.points[-1].loss:.4f}" if s.points else ""
        step = f"{s.step}/{s.total_steps or '?'}"
        rows.append([s.label, s.status, s.method, s.dataset, step, loss, s.run_id, settings])
    return rows


def final_samples(items: list[monitor.RunSummary], serve: Callable[[Path], str] = str) -> list[tuple[str, str]]:
    return [
        (serve(s.last_sample["path"]), f"{s.label} · {STATUS_WORDS.get(s.status, s.status)}")
        for s in items
        if s.last_sample
    ]


def run_choices(items: list[monitor.RunSummary]) -> list[tuple[str, str]]:
    """(label, id) for the picker: a person reads names, the handlers get ids."""
    return [(s.label, s.run_id) for s in items]


def rename(ws: Workspace, run_id: str | None, name: str) -> str:
    if not run_id:
        raise ValueError("open a run first")
    renamed = run_names.rename_run(ws.run_path(run_id), name)
    return f"Renamed: lists now show **{renamed.label}** (run {renamed.run_id}; its files keep their names)."


@dataclass
class _Controls:
    """The tab's components by name (`_list` and `_detail` lay them out)."""

    refresh: gr.Button
    picked: gr.Dropdown
    table: gr.Dataframe
    finals: gr.Gallery
    detail: gr.Group
    name: gr.Textbox
    rename: gr.Button
    view: RunView
    resume: gr.Button
    delete: gr.Button
    message: gr.Markdown
    confirm_row: gr.Row
    confirm_text: gr.Markdown
    confirm: gr.Button
    keep: gr.Button
    downloads: gr.File
    score: gr.Button
    clip_model: gr.Textbox
    scorecard: ScorecardView

    @property
    def listed(self) -> list:
        return [self.table, self.finals, self.picked]

    @property
    def opened(self) -> list:
        """What shows the run open."""
        return [self.detail, self.name, *self.view.outputs, self.downloads, self.confirm_row, *self.scorecard.outputs]


def build(loaded: gr.events.Dependency, workspaces: Workspaces) -> BuiltTab:
    """`loaded`: the page's load event that knows the visitor; the tab loads its data after it."""
    listed = _list()
    with gr.Group(visible=False) as detail:
        ui = _Controls(**listed, detail=detail, **_detail(workspaces))
    handlers = _Handlers(ui, workspaces)
    _wire(ui, handlers)
    loaded.then(handlers.on_refresh, ui.picked, ui.listed, api_visibility="private")
    return BuiltTab(on_select=Answer(handlers.on_refresh, ui.picked, ui.listed))


def _list() -> dict:
    with gr.Row():
        refresh = gr.Button("↻ Refresh", scale=0, elem_id="runs-refresh")
        picked = gr.Dropdown([], label="Open a run", scale=4, elem_id="runs-pick")
    table = gr.Dataframe(
        headers=COLUMNS, interactive=False, wrap=True, label="Runs (newest first)", elem_id="runs-table"
    )
    finals = gr.Gallery(
        label="Final sample of each run (click to open)", columns=8, height=170, object_fit="contain",
        allow_preview=False, preview=False, elem_id="runs-finals",
    )  # fmt: skip
    return dict(refresh=refresh, picked=picked, table=table, finals=finals)


def _detail(workspaces: Workspaces) -> dict:
    """One run open: its name, chart and samples, its actions, downloads and scorecard."""
    with gr.Row(equal_height=True):
        name = gr.Textbox(
            label="Name", scale=4, elem_id="runs-name", max_length=run_names.MAX_NAME,
            info="What every list calls this run (Playground slots, Compare, saved mixes); its id and files stay.",
        )  # fmt: skip
        rename_button = gr.Button("Rename", scale=1, min_width=100, elem_id="runs-rename")
    view = RunView("runs", workspaces.served_copy)
    with gr.Row():
        resume = gr.Button("Resume", elem_id="runs-resume")
        delete = gr.Button("Delete…", variant="stop", elem_id="runs-delete")
    message = gr.Markdown(elem_id="runs-message")  # beside the buttons whose answers it shows
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.Markdown()
        confirm = gr.Button("Delete for good", variant="stop", elem_id="runs-confirm-delete")
        keep = gr.Button("Keep it", elem_id="runs-keep")
    downloads = gr.File(
        label="Outputs (click a name to download)", file_count="multiple", interactive=False, elem_id="runs-files",
    )  # fmt: skip
    with gr.Accordion("Which file for which tool", open=False):
        gr.Markdown(WHICH_FILE_FOR_WHICH_TOOL, elem_id="runs-which-file")
    with gr.Accordion("Scorecard: which checkpoint is best, did it overfit?", open=True):
        with gr.Row():
            score = gr.Button("Score checkpoints", variant="primary", scale=1, elem_id="runs-score")
            clip_model = gr.Textbox(
                label="CLIP model (real models only)", scale=3, elem_id="runs-clip-model",
                visible=not workspaces.public,  # a visitor may not load models from paths or hub ids
                placeholder="openai/clip-vit-base-patch32 or a local folder; the pocket model needs none",
            )  # fmt: skip
        scorecard = ScorecardView("runs")
    return dict(name=name, rename=rename_button, view=view, resume=resume, delete=delete, message=message,
                confirm_row=confirm_row, confirm_text=confirm_text, confirm=confirm, keep=keep, downloads=downloads,
                score=score, clip_model=clip_model, scorecard=scorecard)  # fmt: skip


class _Handlers:
    def __init__(self, ui: _Controls, workspaces: Workspaces) -> None:
        self.ui, self.workspaces = ui, workspaces

    @friendly
    def on_refresh(self, current: str | None):
        items = summaries(self.workspaces.get())
        value = current if current in {s.run_id for s in items} else None
        return (
            table_rows(items),
            final_samples(items, self.workspaces.served_copy),
            gr.Dropdown(choices=run_choices(items), value=value),
        )

    @friendly
    def on_open(self, run_id: str | None) -> dict:
        ui = self.ui
        if not run_id:
            return {ui.detail: gr.Group(visible=False), ui.name: "", ui.downloads: None,
                    ui.confirm_row: gr.Row(visible=False)} | ui.view.updates(None) | ui.scorecard.updates(None)  # fmt: skip
        run_dir = self.workspaces.get().run_path(run_id)
        summary = monitor.summarise(run_dir)
        served = self.workspaces.served_copy
        files = [served(p) for p in download_files(run_dir)] if summary.status == "finished" else None
        return {ui.detail: gr.Group(visible=True), ui.name: summary.name, ui.downloads: files,
                ui.confirm_row: gr.Row(visible=False)} | ui.view.updates(summary) | ui.scorecard.updates_for(run_dir)  # fmt: skip

    @friendly
    def on_score(self, run_id: str | None, clip: str, progress=gr.Progress()):
        if not run_id:
            raise ValueError("open a run first")
        run_dir = self.workspaces.get().run_path(run_id)
        if self.workspaces.public:
            clip = ""  # the field is hidden there; a crafted request still loads nothing named by the visitor
        progress(0, desc="loading the model")
        card = evaluate_run(
            run_dir,
            clip_model=clip.strip() or None,
            on_progress=lambda done, total: progress(done / total, desc=f"rendering model {done + 1} of {total}"),
        )
        return self.ui.scorecard.updates(card.to_dict())

    def on_final(self, event: gr.SelectData):
        # the gallery lists the runs with a final sample, newest first: the same order as final_samples
        shown = [s.run_id for s in summaries(self.workspaces.get()) if s.last_sample]
        return shown[event.index] if isinstance(event.index, int) and event.index < len(shown) else gr.skip()

    @as_message
    def on_rename(self, run_id: str | None, new_name: str):
        return rename(self.workspaces.get(), run_id, new_name)

    @as_message
    def on_resume(self, run_id: str | None):
        if not run_id:
            raise ValueError("open a run first")
        ws = self.workspaces.get()
        ws.jobs.resume(ws.run_path(run_id))
        return f"Resuming **{run_id}**; follow it in the Train tab."

    def on_delete(self, run_id: str | None):
        if not run_id:
            return gr.Row(visible=False), ""
        return gr.Row(visible=True), f"Delete run **{run_id}** with its checkpoints and outputs?"

    @friendly
    def on_confirm(self, run_id: str | None):
        ws = self.workspaces.get()
        delete_run(ws.run_path(run_id or ""), ws.runs_root)
        return f"Deleted run {run_id}.", gr.Row(visible=False)


def _wire(ui: _Controls, handlers: _Handlers) -> None:
    picked, listed, opened = ui.picked, ui.listed, ui.opened
    ui.refresh.click(handlers.on_refresh, picked, listed, api_visibility="private")
    picked.change(handlers.on_open, picked, opened, api_visibility="private")
    ui.finals.select(handlers.on_final, None, picked, api_visibility="private")
    # scoring renders images: it waits its turn with the playground's and compare's generation
    ui.score.click(handlers.on_score, [picked, ui.clip_model], ui.scorecard.outputs, concurrency_id="engine",
                   api_name="score_run")  # fmt: skip
    ui.resume.click(handlers.on_resume, picked, ui.message, api_visibility="private")
    renamed = gr.on([ui.rename.click, ui.name.submit], handlers.on_rename, [picked, ui.name], ui.message,
                    api_visibility="private")  # fmt: skip
    renamed.then(handlers.on_refresh, picked, listed, api_visibility="private").then(
        handlers.on_open, picked, opened, api_visibility="private"
    )
    ui.delete.click(handlers.on_delete, picked, [ui.confirm_row, ui.confirm_text], api_visibility="private")
    ui.keep.click(lambda: gr.Row(visible=False), None, ui.confirm_row, api_visibility="private")
    ui.confirm.click(handlers.on_confirm, picked, [ui.message, ui.confirm_row], api_visibility="private").then(
        handlers.on_refresh, picked, listed, api_visibility="private"
    )
