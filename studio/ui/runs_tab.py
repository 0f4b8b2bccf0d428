"""Runs tab: every run with its status, method, dataset, key settings and final sample; open one to see its chart
and samples again, score its checkpoints (the scorecard), resume it, delete it (after a confirmation) or download
its outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gradio as gr

from studio import runs
from studio.runs import names as run_names
from studio.runs.downloads import delete_run, download_files
from studio.train import monitor
from studio.train.which_file import WHICH_FILE_FOR_WHICH_TOOL
from studio.ui.errors import as_message, friendly
from studio.ui.run_view import STATUS_WORDS, RunView
from studio.ui.scorecard_view import ScorecardView
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


def build(loaded: gr.events.Dependency, tab: gr.Tab, workspaces: Workspaces) -> None:
    """`loaded`: the page's load event that knows the visitor; the tab loads its data after it."""
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
    with gr.Group(visible=False) as detail:
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
            label="Outputs (click a name to download)", file_count="multiple", interactive=False,
            elem_id="runs-files",
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

    @friendly
    def on_refresh(current: str | None):
        items = summaries(workspaces.get())
        value = current if current in {s.run_id for s in items} else None
        return (
            table_rows(items),
            final_samples(items, workspaces.served_copy),
            gr.Dropdown(choices=run_choices(items), value=value),
        )

    @friendly
    def on_open(run_id: str | None):
        if not run_id:
            return [
                gr.Group(visible=False),
                "",
                *view.values(None),
                None,
                gr.Row(visible=False),
                *scorecard.values(None),
            ]
        run_dir = workspaces.get().run_path(run_id)
        summary = monitor.summarise(run_dir)
        files = [workspaces.served_copy(p) for p in download_files(run_dir)] if summary.status == "finished" else None
        return [
            gr.Group(visible=True),
            summary.name,
            *view.values(summary),
            files,
            gr.Row(visible=False),
            *scorecard.values_for(run_dir),
        ]

    @friendly
    def on_score(run_id: str | None, clip: str, progress=gr.Progress()):
        from studio.evaluate import evaluate_run

        if not run_id:
            raise ValueError("open a run first")
        run_dir = workspaces.get().run_path(run_id)
        if workspaces.public:
            clip = ""  # the field is hidden there; a crafted request still loads nothing named by the visitor
        progress(0, desc="loading the model")
        card = evaluate_run(
            run_dir,
            clip_model=clip.strip() or None,
            on_progress=lambda done, total: progress(done / total, desc=f"rendering model {done + 1} of {total}"),
        )
        return scorecard.values(card.to_dict())

    def on_final(event: gr.SelectData):
        # the gallery lists the runs with a final sample, newest first: the same order as final_samples
        shown = [s.run_id for s in summaries(workspaces.get()) if s.last_sample]
        return shown[event.index] if isinstance(event.index, int) and event.index < len(shown) else gr.skip()

    @as_message
    def on_rename(run_id: str | None, new_name: str):
        return rename(workspaces.get(), run_id, new_name)

    @as_message
    def on_resume(run_id: str | None):
        if not run_id:
            raise ValueError("open a run first")
        ws = workspaces.get()
        ws.jobs.resume(ws.run_path(run_id))
        return f"Resuming **{run_id}**; follow it in the Train tab."

    def on_delete(run_id: str | None):
        if not run_id:
            return gr.Row(visible=False), ""
        return gr.Row(visible=True), f"Delete run **{run_id}** with its checkpoints and outputs?"

    @friendly
    def on_confirm(run_id: str | None):
        ws = workspaces.get()
        delete_run(ws.run_path(run_id or ""), ws.runs_root)
        return f"Deleted run {run_id}.", gr.Row(visible=False)

    outputs = [table, finals, picked]
    open_outputs = [detail, name, *view.outputs, downloads, confirm_row, *scorecard.outputs]
    refresh.click(on_refresh, picked, outputs, api_visibility="private")
    picked.change(on_open, picked, open_outputs, api_visibility="private")
    finals.select(on_final, None, picked, api_visibility="private")
    # scoring renders images: it waits its turn with the playground's and compare's generation
    score.click(on_score, [picked, clip_model], scorecard.outputs, concurrency_id="engine", api_name="score_run")
    resume.click(on_resume, picked, message, api_visibility="private")
    renamed = gr.on([rename_button.click, name.submit], on_rename, [picked, name], message, api_visibility="private")
    renamed.then(on_refresh, picked, outputs, api_visibility="private").then(
        on_open, picked, open_outputs, api_visibility="private"
    )
    delete.click(on_delete, picked, [confirm_row, confirm_text], api_visibility="private")
    keep.click(lambda: gr.Row(visible=False), None, confirm_row, api_visibility="private")
    confirm.click(on_confirm, picked, [message, confirm_row], api_visibility="private").then(
        on_refresh, picked, outputs, api_visibility="private"
    )
    loaded.then(on_refresh, picked, outputs, api_visibility="private")
    tab.select(on_refresh, picked, outputs, api_visibility="private")
