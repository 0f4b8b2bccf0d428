"""The Train tab's components by name, laid out: the settings on the left (method, preset, dataset and the config
form), the advice, the run's buttons and its live view on the right. The wiring is `studio.ui.train_tab`'s."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from studio.train.config import RunConfig, resolve_config
from studio.ui.config_form import METHODS, ConfigForm, method_hints
from studio.ui.run_view import RunView
from studio.workspace import Workspaces


@dataclass
class TrainControls:
    """The tab's components by name (`lay_out` places them), and what it remembers
    between events (States)."""

    form: ConfigForm
    method: gr.Dropdown
    preset: gr.Dropdown
    preset_note: gr.Markdown
    dataset: gr.Dropdown
    refresh: gr.Button
    advice_box: gr.Markdown
    cpu_fix: gr.Button
    start: gr.Button
    cancel: gr.Button
    resume: gr.Button
    add: gr.Button
    message: gr.Markdown
    view: RunView
    opened: gr.Component  # the Dataset tab's picker (a State holding None without one)
    prepared: gr.State  # the Train-tab choice of the copy last prepared there
    seen: gr.State = field(default_factory=lambda: gr.State(None))  # what the page shows (run, events, status)
    followed: gr.State = field(default_factory=lambda: gr.State(None))  # the id of the run shown
    last_trigger: gr.State = field(default_factory=lambda: gr.State([]))  # the trigger the prompts were written for
    offered: gr.State = field(default_factory=lambda: gr.State(None))  # the Dataset-tab dataset last offered here
    picked_now: gr.State = field(default_factory=lambda: gr.State(None))  # that offer, when it was just taken

    @property
    def form_inputs(self) -> set:
        return self.form.components | {self.method, self.dataset}

    @property
    def prompts(self) -> gr.Textbox:
        return self.form.fields["training.sample_prompts"]

    @property
    def advised(self) -> list:
        return [self.advice_box, self.cpu_fix]

    @property
    def recommended(self) -> list:
        return [self.method, self.preset, self.preset_note]

    @property
    def sources(self) -> list:
        """What the dataset offered depends on: the one picked here, the Dataset tab's and the last offer."""
        return [self.dataset, self.opened, self.prepared, self.offered]

    @property
    def listed(self) -> list:
        return [self.dataset, self.offered, self.picked_now]

    @property
    def live(self) -> list:
        """What a tick of the live view updates."""
        return [*self.view.outputs, self.seen, self.followed, self.message]


def lay_out(
    form: ConfigForm,
    preset: str,
    by_method: dict[str, list[str]],
    workspaces: Workspaces,
    opened: gr.Component | None = None,
    prepared: gr.State | None = None,
) -> TrainControls:
    """The tab's two columns; the form shows `preset` first, `by_method` lists each method's presets."""
    defaults = resolve_config(preset=preset)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=420):
            settings = _settings_column(form, defaults, preset, by_method)
        with gr.Column(scale=3, min_width=520):
            run = _run_column(workspaces)
    return TrainControls(form=form, **settings, **run, opened=opened or gr.State(None),
                         prepared=prepared or gr.State(None))  # fmt: skip


def _settings_column(form: ConfigForm, defaults: RunConfig, first_preset: str, by_method: dict) -> dict:
    """Method, preset and dataset, then the config form (its important fields, the rest under Advanced)."""
    with gr.Row():
        method = gr.Dropdown(
            [(label, name) for name, label in METHODS.items()], value=defaults.method, label="Method",
            info=method_hints(),
            elem_id="train-method",
        )  # fmt: skip
        preset = gr.Dropdown(
            by_method[defaults.method], value=first_preset, label="Preset",
            info="Fills the form with settings known to work; change anything after.", elem_id="train-preset",
        )  # fmt: skip
    preset_note = gr.Markdown(elem_id="train-preset-note")
    with gr.Row():
        dataset = gr.Dropdown(
            [], label="Dataset", info="A dataset from the Dataset tab (or one of its prepared copies).",
            elem_id="train-dataset", scale=4,
        )  # fmt: skip
        refresh = gr.Button("↻", scale=0, min_width=40, elem_id="train-refresh-datasets")
    form.render_important(defaults)
    with gr.Accordion("Advanced", open=False, elem_id="train-advanced"):
        form.render_advanced(defaults)
    return dict(method=method, preset=preset, preset_note=preset_note, dataset=dataset, refresh=refresh)


def _run_column(workspaces: Workspaces) -> dict:
    """The advice, the run's buttons and the live view of the run."""
    advice_box = gr.Markdown(elem_id="train-advice")
    # the fix for a config this machine cannot train (fp16 without a GPU), beside the warning that names it
    cpu_fix = gr.Button("Train in full precision (no GPU here)", visible=False, size="sm", elem_id="train-cpu-fix")
    with gr.Row():
        start = gr.Button("Start training", variant="primary", elem_id="train-start")
        cancel = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
        resume = gr.Button("Resume", elem_id="train-resume")
        # the queue is a private studio's: a visitor of a public one trains one run at a time
        add = gr.Button("Add to queue", elem_id="train-queue-add", visible=not workspaces.public)
    message = gr.Markdown(elem_id="train-message")
    view = RunView("train", workspaces.served_copy)
    return dict(advice_box=advice_box, cpu_fix=cpu_fix, start=start, cancel=cancel, resume=resume, add=add,
                message=message, view=view)  # fmt: skip
