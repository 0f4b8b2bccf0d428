"""Compare tab: fixed-seed grids (which checkpoint is best? which weight? which sampler?) and an A/B slider.

UI only: the grid is `studio.generate.grid.render_grid`, the same function as `studio compare`.
"""

from __future__ import annotations

import json
import time

import gradio as gr

from studio.generate import library
from studio.generate.engine import GenerationEngine, GenerationSettings
from studio.generate.grid import AXIS_KINDS, NO_LORA, Axis, best_checkpoint_axes, render_grid, save_cells, save_grid
from studio.ui.playground_tab import Playground
from studio.ui.scorecard_view import ScorecardView

DEFAULT_BASE = {"prompt": "a red circle on a black background", "steps": 20, "seed": 0, "model": "pocket"}
AXIS_HINT = (
    "Comma-separated values; prompts separated by |; checkpoint: a run folder (every saved step) or LoRA files "
    "(none = without the LoRA)."
)


def _run_choices() -> list[tuple[str, str]]:
    return [(c.label, c.path) for c in library.list_checkpoint_runs()]


def _axis_row(name: str, kind: str | None, values: str):
    with gr.Row():
        kind_box = gr.Dropdown(
            choices=[("(none)", "")] + [(k, k) for k in AXIS_KINDS],
            value=kind or "",
            label=f"{name} axis",
            scale=2,
            elem_id=f"cmp-{name.lower()}-kind",
        )
        values_box = gr.Textbox(
            value=values, label=f"{name} values", info=AXIS_HINT, scale=3, elem_id=f"cmp-{name.lower()}-values"
        )
    return kind_box, values_box


def _checked_axis(kind: str, values: str) -> Axis | None:
    if not kind:
        return None
    axis = Axis.parse(f"{kind}={values}")
    if axis.kind == "checkpoint":
        for path in axis.values:
            if path != NO_LORA:
                library.inside_data(path)  # the UI compares our runs' checkpoints and uploaded files only
    return axis


def _checked_base(text: str) -> GenerationSettings:
    try:
        values = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise ValueError(f"the base settings are not valid JSON: {error.msg} (line {error.lineno})") from None
    if not isinstance(values, dict):
        raise ValueError("the base settings must be a JSON object")
    values.pop("count", None)
    for item in values.get("loras", []) + values.get("embeddings", []) + values.get("svdiffs", []):
        library.inside_data(item.get("path", ""))
    values.setdefault("prompt", DEFAULT_BASE["prompt"])
    return GenerationSettings.from_dict(values)


def build(engine: GenerationEngine, playground: Playground | None = None) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            gr.Markdown(
                "### Which checkpoint is best?\nThe base model and every saved step of a run, on the run's sample prompts."
            )
            with gr.Row():
                run_box = gr.Dropdown(
                    choices=_run_choices(), label="Run", scale=4, elem_id="cmp-run", allow_custom_value=False
                )
                refresh = gr.Button("Refresh", size="sm", scale=1, elem_id="cmp-refresh")
            best = gr.Button("Compare its checkpoints", variant="primary", elem_id="cmp-best")
            gr.Markdown("### Grid builder")
            base = gr.Code(
                value=json.dumps(DEFAULT_BASE, indent=2),
                language="json",
                label="Base settings (the playground's 'Send to compare' fills this)",
                lines=8,
                elem_id="cmp-base",
            )
            x_kind, x_values = _axis_row("X", "guidance", "2, 5, 8")
            y_kind, y_values = _axis_row("Y", "sampler", "dpmpp_2m, euler_a")
            z_kind, z_values = _axis_row("Z", None, "")
            render = gr.Button("Render grid", variant="primary", elem_id="cmp-render")
        with gr.Column(scale=3):
            grid_image = gr.Image(label="Grid", type="filepath", format="png", interactive=False, elem_id="cmp-grid")
            status = gr.Markdown(elem_id="cmp-status")
            with gr.Accordion("The run's scorecard (score it in the Runs tab)", open=True):
                scorecard = ScorecardView("cmp")
            gr.Markdown("### Side by side\nPick two cells of the grid and drag the slider.")
            with gr.Row():
                cell_a = gr.Dropdown(label="Left", choices=[], elem_id="cmp-cell-a")
                cell_b = gr.Dropdown(label="Right", choices=[], elem_id="cmp-cell-b")
            slider = gr.ImageSlider(label="A / B", type="filepath", format="png", elem_id="cmp-slider")

    cells = gr.State([])  # (label, png path) of every cell of the last grid

    def finish(grid, started: float):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = library.data_dir() / "outputs" / "grids"
        path = save_grid(grid, folder / f"grid-{stamp}.png")
        cell_paths = [str(p) for p in save_cells(grid, folder / f"grid-{stamp}-cells")]
        pairs = list(zip(grid.labels, cell_paths))
        choices = [(label, path) for label, path in pairs]
        first, second = cell_paths[0], cell_paths[-1]
        count = f"{len(cell_paths)} image{'s' if len(cell_paths) != 1 else ''}"
        note = f"{count} in {time.perf_counter() - started:.1f} s, seed {grid.cells[0]['seed']}. Saved to `{path.relative_to(library.data_dir())}`."
        return (
            str(path),
            note,
            pairs,
            gr.Dropdown(choices=choices, value=first),
            gr.Dropdown(choices=choices, value=second),
            (first, second),
        )

    def compare_checkpoints(run: str | None, progress=gr.Progress()):
        if not run:
            raise gr.Error("pick a run with saved checkpoints (train one in the Train tab)")
        started = time.perf_counter()
        try:
            x, y, run_base = best_checkpoint_axes(library.inside_data(run))
            settings = GenerationSettings(prompt=y.values[0], **run_base)
            grid = render_grid(engine, settings, x, y, on_cell=lambda d, t: progress(d / t, desc="drawing cells"))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from error
        return finish(grid, started)

    def render_custom(values: dict, progress=gr.Progress()):
        started = time.perf_counter()
        try:
            settings = _checked_base(values[base])
            x = _checked_axis(values[x_kind], values[x_values])
            if x is None:
                raise ValueError("choose what the X axis varies")
            y = _checked_axis(values[y_kind], values[y_values])
            z = _checked_axis(values[z_kind], values[z_values])
            grid = render_grid(engine, settings, x, y, z, on_cell=lambda d, t: progress(d / t, desc="drawing cells"))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from error
        return finish(grid, started)

    def show_pair(a: str | None, b: str | None):
        return (a, b) if a and b else None

    outputs = [grid_image, status, cells, cell_a, cell_b, slider]
    best.click(
        compare_checkpoints, inputs=run_box, outputs=outputs, concurrency_id="engine", api_name="compare_checkpoints"
    )
    render.click(
        render_custom,
        inputs={base, x_kind, x_values, y_kind, y_values, z_kind, z_values},
        outputs=outputs,
        concurrency_id="engine",
        api_name="compare_grid",
    )
    refresh.click(lambda: gr.Dropdown(choices=_run_choices()), outputs=run_box, api_name="compare_refresh_runs")

    def run_scorecard(run: str | None) -> list:
        try:
            return scorecard.values_for(library.inside_data(run) if run else None)
        except (ValueError, OSError):
            return scorecard.values(None)

    run_box.change(run_scorecard, inputs=run_box, outputs=scorecard.outputs, api_visibility="private")
    for box in (cell_a, cell_b):
        box.change(
            show_pair, inputs=[cell_a, cell_b], outputs=slider, api_name="compare_pick_cells", api_visibility="private"
        )

    if playground is not None:

        def send(values: dict) -> str:
            try:
                settings = playground.settings(values)
            except ValueError as error:
                raise gr.Error(str(error)) from error
            settings.pop("count", None)
            gr.Info("Sent: open the Compare tab and choose the axes.")
            return json.dumps(settings, indent=2)

        playground.send_button.click(
            send, inputs=playground.inputs, outputs=base, api_name="playground_send_to_compare"
        )
