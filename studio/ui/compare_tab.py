"""Compare tab: fixed-seed grids (which checkpoint is best? which weight? which sampler?) and an A/B slider.

UI only: the grid is `studio.generate.grid.render_grid`, the same function as `studio compare`; the form's fields
and what they mean are `studio.ui.compare_form`. A refusal (nothing picked, a typo) is one sentence under the grid,
not Gradio's red "Error" badge on every panel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from studio.generate import library
from studio.generate.engine import GenerationEngine, GenerationSettings
from studio.generate.grid import AXIS_KINDS, Grid, best_checkpoint_axes, render_grid, save_cells, save_grid
from studio.generate.samplers import sampler_labels
from studio.paths import data_dir
from studio.ui.compare_form import (
    CHECKPOINT_HINT,
    DEFAULT_AXES,
    DEFAULT_BASE,
    EXTRAS,
    VALUES_HINT,
    AxisRow,
    ComparisonForm,
    axis,
    base_settings,
    describe_extras,
    lora_add_choices,
    run_choices,
    stacked_vs_alone,
    target_choices,
)
from studio.ui.errors import refusal
from studio.ui.playground_tab import Playground
from studio.ui.scorecard_view import ScorecardView
from studio.ui.tab import Answer, BuiltTab


@dataclass
class Compare(BuiltTab):
    """What the page wires to: the form (read into a dict and back, the memory of a reload)."""

    form: ComparisonForm


@dataclass
class _Controls:
    """The tab's components besides the form's, by name."""

    refresh: gr.Button
    best: gr.Button
    adapters: gr.Markdown
    add_lora: gr.Dropdown
    add_weight: gr.Number
    add: gr.Button
    clear: gr.Button
    render: gr.Button
    stack_alone: gr.Button
    status: gr.Markdown
    grid_image: gr.Image
    scorecard: ScorecardView
    cell_a: gr.Dropdown
    cell_b: gr.Dropdown
    slider: gr.ImageSlider
    cells: gr.State  # (label, png path) of every cell of the last grid

    @property
    def grid_outputs(self) -> list:
        return [self.grid_image, self.status, self.cells, self.cell_a, self.cell_b, self.slider]


def _axis_row(name: str) -> AxisRow:
    shown = DEFAULT_AXES[name]
    key, checkpoint = name.lower(), shown["kind"] == "checkpoint"
    with gr.Row(equal_height=True):
        kind = gr.Dropdown(
            choices=[("(none)", "")] + [(k, k) for k in AXIS_KINDS], value=shown["kind"], label=f"{name.upper()} axis",
            scale=2, min_width=150, elem_id=f"cmp-{key}-kind",
        )  # fmt: skip
        # one of the two shows: a run for a checkpoint axis, typed values for the others
        run = gr.Dropdown(
            choices=run_choices(), value=None, label=f"{name.upper()} run", info=CHECKPOINT_HINT,
            allow_custom_value=True, visible=checkpoint, scale=3, elem_id=f"cmp-{key}-run",
        )  # fmt: skip
        values = gr.Textbox(
            value=shown["values"], label=f"{name.upper()} values", info=VALUES_HINT, visible=not checkpoint,
            scale=3, elem_id=f"cmp-{key}-values",
        )  # fmt: skip
    return AxisRow(kind, values, run)


def _base_fields() -> dict:
    prompt = gr.Textbox(value=DEFAULT_BASE["prompt"], label="Prompt", lines=2, elem_id="cmp-prompt")
    negative = gr.Textbox(label="Negative prompt", elem_id="cmp-negative")
    with gr.Row():
        sampler = gr.Dropdown(
            choices=[(label, name) for name, label in sampler_labels().items()], value="default",
            label="Sampler", min_width=160, elem_id="cmp-sampler",
        )  # fmt: skip
        model = gr.Textbox(value="pocket", label="Base model", min_width=160, elem_id="cmp-model")
    with gr.Row():
        steps = gr.Number(value=DEFAULT_BASE["steps"], precision=0, label="Steps", min_width=80, elem_id="cmp-steps")
        guidance = gr.Number(value=DEFAULT_BASE["guidance"], label="Guidance", min_width=80, elem_id="cmp-guidance")
        seed = gr.Number(value=0, precision=0, label="Seed", min_width=80, elem_id="cmp-seed")
    return {"prompt": prompt, "negative_prompt": negative, "sampler": sampler, "steps": steps,
            "guidance": guidance, "seed": seed, "model": model}  # fmt: skip


def build(engine: GenerationEngine, playground: Playground | None = None) -> Compare:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=380):
            form, left = _form_column()
        # the results stay in view (app.CSS: sticky) while the form on the left is scrolled, so what a button did,
        # a grid or a refusal, is seen where the person is looking
        with gr.Column(scale=3, min_width=480, elem_id="cmp-results"):
            right = _results_column()
    ui = _Controls(**left, **right, cells=gr.State([]))
    handlers = _Handlers(engine, form, ui)
    _wire_grids(handlers)
    _wire_form(handlers)
    if playground is not None:
        _wire_send(playground, form)
    lists = [*form.list_components, ui.add_lora]
    refreshed = Answer(handlers.refreshed, set(lists), lists, show_progress="hidden")
    return Compare(form=form, memory=form.memory(), on_select=refreshed, on_runs_changed=refreshed)


def _form_column() -> tuple[ComparisonForm, dict]:
    """Which checkpoint is best (a run), then the grid builder: base settings, adapters, three axes."""
    gr.Markdown(
        "### Which checkpoint is best?\nThe base model and every saved step of a run, on the run's sample prompts."
    )
    with gr.Row(equal_height=True):
        run_box = gr.Dropdown(
            choices=run_choices(), label="Run", scale=4, elem_id="cmp-run", allow_custom_value=True,
            info="Pick one, or type a run id (or runs/<id>).",
        )  # fmt: skip
        refresh = gr.Button("Refresh", size="sm", scale=1, min_width=80, elem_id="cmp-refresh")
    best = gr.Button("Compare its checkpoints", variant="primary", elem_id="cmp-best")
    gr.Markdown("### Grid builder")
    with gr.Accordion("Base settings (the Playground's 'Send to compare' fills these)", open=True):
        fields = _base_fields()
        extras = gr.State({})
        adapters = gr.Markdown(describe_extras({}), elem_id="cmp-adapters")
        with gr.Row(equal_height=True):
            add_lora = gr.Dropdown(
                choices=lora_add_choices(), value=None, label="Add a LoRA", scale=3, elem_id="cmp-add-lora"
            )
            add_weight = gr.Number(value=1.0, label="Weight", scale=1, min_width=80, elem_id="cmp-add-weight")
            with gr.Column(scale=1, min_width=100):
                add = gr.Button("Add", size="sm", elem_id="cmp-add")
                clear = gr.Button("Clear LoRAs", size="sm", elem_id="cmp-clear")
    rows = {name: _axis_row(name) for name in ("x", "y", "z")}
    target = gr.Dropdown(
        choices=target_choices({}), value=0, label="The LoRA the weight and checkpoint axes act on",
        elem_id="cmp-lora-target",
    )  # fmt: skip
    with gr.Row():
        render = gr.Button("Render grid", variant="primary", scale=2, elem_id="cmp-render")
        stack_alone = gr.Button("Stacked vs each alone", scale=1, min_width=160, elem_id="cmp-stack-alone")
    form = ComparisonForm(fields, extras, rows, target, run_box)
    return form, dict(refresh=refresh, best=best, adapters=adapters, add_lora=add_lora, add_weight=add_weight,
                      add=add, clear=clear, render=render, stack_alone=stack_alone)  # fmt: skip


def _results_column() -> dict:
    """The grid and its status, the run's scorecard and an A/B slider of two cells."""
    status = gr.Markdown(elem_id="cmp-status")
    grid_image = gr.Image(label="Grid", type="filepath", format="png", interactive=False, elem_id="cmp-grid")
    # next to the grid: "which checkpoint is best?" has both the pictures and the numbers in view
    with gr.Accordion("The run's scorecard (score it in the Runs tab)", open=True):
        scorecard = ScorecardView("cmp")
    gr.Markdown("Side by side: pick two cells of the grid and drag the slider.")
    with gr.Row():
        cell_a = gr.Dropdown(label="Left", choices=[], elem_id="cmp-cell-a")
        cell_b = gr.Dropdown(label="Right", choices=[], elem_id="cmp-cell-b")
    slider = gr.ImageSlider(label="A / B", type="filepath", format="png", height=240, elem_id="cmp-slider")
    return dict(status=status, grid_image=grid_image, scorecard=scorecard, cell_a=cell_a, cell_b=cell_b,
                slider=slider)  # fmt: skip


class _Handlers:
    """The tab's event handlers. A refusal (nothing picked, a typo) is one sentence under the grid, not Gradio's
    red "Error" badge on every panel."""

    def __init__(self, engine: GenerationEngine, form: ComparisonForm, ui: _Controls) -> None:
        self.engine, self.form, self.ui = engine, form, ui

    def finish(self, grid: Grid, started: float) -> dict:
        ui = self.ui
        stamp = time.strftime("%Y%m%d-%H%M%S-") + f"{time.time_ns() // 1_000_000 % 1000:03d}"  # two a second
        folder = data_dir() / "outputs" / "grids"
        path = save_grid(grid, folder / f"grid-{stamp}.png")
        cell_paths = [str(p) for p in save_cells(grid, folder / f"grid-{stamp}-cells")]
        pairs = list(zip(grid.labels, cell_paths))
        first, second = cell_paths[0], cell_paths[-1]
        count = f"{len(cell_paths)} image{'s' if len(cell_paths) != 1 else ''}"
        note = f"{count} in {time.perf_counter() - started:.1f} s, seed {grid.cells[0]['seed']}. Saved to `{path.relative_to(data_dir())}`."
        return {
            ui.grid_image: str(path),
            ui.status: note,
            ui.cells: pairs,
            ui.cell_a: gr.Dropdown(choices=pairs, value=first),
            ui.cell_b: gr.Dropdown(choices=pairs, value=second),
            ui.slider: (first, second),
        }

    def rendered(self, draw: Callable[[Callable], Grid], progress: gr.Progress) -> dict:
        """`draw(on_cell)` -> a grid, saved and shown; a refusal is an answer, not a failure: the sentence under
        the grid, every panel left as it was."""
        started = time.perf_counter()
        try:
            grid = draw(lambda done, total: progress(done / total, desc="drawing cells"))
        except (ValueError, OSError) as error:
            return {self.ui.status: f"⚠ {error}"}
        return self.finish(grid, started)

    def base(self, values: dict) -> GenerationSettings:
        fields = self.form.fields
        return base_settings({name: values[c] for name, c in fields.items()}, values[self.form.extras])

    def compare_checkpoints(self, run: str | None, progress=gr.Progress()):
        def draw(on_cell: Callable) -> Grid:
            x, y, run_base = best_checkpoint_axes(library.find_run(run or ""))
            return render_grid(self.engine, GenerationSettings(prompt=y.values[0], **run_base), x, y, on_cell=on_cell)

        return self.rendered(draw, progress)

    def render_custom(self, values: dict, progress=gr.Progress()):
        form = self.form

        def draw(on_cell: Callable) -> Grid:
            settings = self.base(values)
            x, y, z = (
                axis(values[row.kind], values[row.values], values[row.run], values[form.target], values[form.extras])
                for row in form.axes.values()
            )
            if x is None:
                raise ValueError("choose what the X axis varies")
            return render_grid(self.engine, settings, x, y, z, on_cell=on_cell)

        return self.rendered(draw, progress)

    def render_stacked_vs_alone(self, values: dict, progress=gr.Progress()):
        """One click: the base settings' LoRAs stacked, then each alone, then none, on the base prompt."""

        def draw(on_cell: Callable) -> Grid:
            settings = self.base(values)
            return render_grid(self.engine, settings, stacked_vs_alone(settings.loras), on_cell=on_cell)

        return self.rendered(draw, progress)

    def extras_shown(self, chosen: dict, picked):
        choices = target_choices(chosen)
        value = picked if picked in {v for _, v in choices} else 0
        return describe_extras(chosen), gr.Dropdown(choices=choices, value=value)

    def refreshed(self, values: dict) -> dict:
        return self.form.refreshed_lists(values) | {self.ui.add_lora: gr.Dropdown(choices=lora_add_choices())}

    def run_scorecard(self, run: str | None) -> dict:
        scorecard = self.ui.scorecard
        try:
            return scorecard.updates_for(library.find_run(run) if run else None)
        except (ValueError, OSError):
            return scorecard.updates(None)


def add_to_stack(chosen: dict, path: str | None, weight: float):
    if not path:
        return gr.skip(), "⚠ Choose a LoRA to add."
    loras = [*(chosen or {}).get("loras", []), {"path": path, "weight": float(weight or 1.0), "enabled": True}]
    return (chosen or {}) | {"loras": loras}, ""


def show_pair(a: str | None, b: str | None):
    return (a, b) if a and b else None


# On a narrow screen the results column comes after every control, far below the button pressed: bring it into
# view when a grid is asked for (on a wide one it is beside the buttons, and "nearest" then moves nothing or little)
SHOW_RESULTS = (
    "() => { document.getElementById('cmp-results')?.scrollIntoView({behavior: 'smooth', block: 'nearest'}); }"
)


def _wire_grids(handlers: _Handlers) -> None:
    """The three ways to a grid: a run's checkpoints, the grid builder, stacked vs each alone."""
    form, ui = handlers.form, handlers.ui
    for button in (ui.best, ui.render, ui.stack_alone):
        button.click(None, js=SHOW_RESULTS, api_visibility="private")
    base = {*form.fields.values(), form.extras}
    axes = {c for row in form.axes.values() for c in (row.kind, row.values, row.run)}
    ui.best.click(handlers.compare_checkpoints, inputs=form.run, outputs=ui.grid_outputs, concurrency_id="engine",
                  api_name="compare_checkpoints")  # fmt: skip
    ui.render.click(handlers.render_custom, inputs=base | {form.target} | axes, outputs=ui.grid_outputs,
                    concurrency_id="engine", api_name="compare_grid")  # fmt: skip
    ui.stack_alone.click(handlers.render_stacked_vs_alone, inputs=base, outputs=ui.grid_outputs,
                         concurrency_id="engine", api_name="compare_stacked_vs_alone")  # fmt: skip
    for box in (ui.cell_a, ui.cell_b):
        box.change(show_pair, inputs=[ui.cell_a, ui.cell_b], outputs=ui.slider, api_name="compare_pick_cells",
                   api_visibility="private")  # fmt: skip


def _wire_form(handlers: _Handlers) -> None:
    """The lists read again, each axis's kind choosing its box, the LoRA stack, the run's scorecard."""
    form, ui = handlers.form, handlers.ui
    lists = [*form.list_components, ui.add_lora]
    ui.refresh.click(handlers.refreshed, inputs=set(lists), outputs=lists, api_name="compare_refresh_runs")
    for row in form.axes.values():
        row.kind.input(
            lambda kind, run, row=row: form.axis_updates(row, kind, run_choices(), run),
            inputs=[row.kind, row.run], outputs=[row.kind, row.run, row.values], api_visibility="private",
        )  # fmt: skip
    extras = form.extras
    extras.change(handlers.extras_shown, [extras, form.target], [ui.adapters, form.target], api_visibility="private")
    ui.add.click(add_to_stack, [extras, ui.add_lora, ui.add_weight], [extras, ui.status], api_visibility="private")
    ui.clear.click(lambda chosen: (chosen or {}) | {"loras": []}, extras, extras, api_visibility="private")
    form.run.change(handlers.run_scorecard, inputs=form.run, outputs=ui.scorecard.outputs, api_visibility="private")


def _wire_send(playground: Playground, form: ComparisonForm) -> None:
    """The Playground's "Send to compare": its settings become the base settings here, by name."""

    def send(values: dict) -> dict:
        try:
            settings = playground.settings(values)
        except ValueError as error:
            raise refusal(str(error)) from error
        gr.Info("Sent: open the Compare tab and choose the axes.")
        shown = {component: settings[name] for name, component in form.fields.items()}
        return shown | {form.extras: {key: settings[key] for key in EXTRAS}}

    playground.send_button.click(
        send, inputs=playground.inputs, outputs=[*form.fields.values(), form.extras],
        api_name="playground_send_to_compare",
    )  # fmt: skip
