"""Train tab: base model, method and preset, a form from the config dataclasses, advice, Start / Cancel / Resume,
and a live view of the run that a `gr.Timer` refreshes from the run folder about once a second.

The page holds no job state: which run is shown, and how far it is, comes from disk on every tick, so a reload
or a second tab shows the same run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import gradio as gr

from studio import runs
from studio.data.examples import example_of
from studio.runs import names as run_names
from studio.train import advice, hardware, monitor
from studio.train.config import RunConfig, list_presets, load_config_file, resolve_config
from studio.train.start import TRIGGER_PLACEHOLDER, swap_trigger
from studio.ui import queue_panel
from studio.ui.config_form import METHODS, ConfigForm, config_from_values
from studio.ui.errors import as_message, friendly
from studio.ui.run_view import RunView
from studio.workspace import Workspace, Workspaces

DEFAULT_PRESET = "lora-pocket"
FINISHED, ENDED = "✓ Training finished", "⚠ Training ended"  # how the message box announces a run's end
log = logging.getLogger(__name__)


# ------------------------------------------------------------------ handlers (no components: tested directly)


def presets_by_method() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {method: [] for method in METHODS}
    for name in list_presets():
        out.setdefault(resolve_config(preset=name).method, []).append(name)
    return out


def advise(ws: Workspace, config: RunConfig, dataset_choice: str | None) -> str:
    """Markdown: what keeps the run off this machine (no GPU), the time and memory estimate, then one line per
    risky setting."""
    lines = [f"⚠ **{problem}**" for problem in hardware.device_warnings(config)]
    lines.append(f"**Estimate:** {advice.estimate(config, ws.runs_root).describe()}")
    if dataset_choice:
        folder = ws.training_source(dataset_choice)
        count, trigger = advice.dataset_facts(folder)
        risks = advice.risky_settings(config, count, trigger)
        risks += [warning] if (warning := advice.upscale_warning(config, advice.smallest_image_side(folder))) else []
    else:
        risks = ["Choose a dataset (make one in the Dataset tab)."]
    lines += [f"⚠ {risk}" for risk in risks]
    return "  \n".join(lines)


def retarget_prompts(ws: Workspace, prompts: str, dataset_choice: str | None, earlier: set[str]) -> str | None:
    """The sample prompts (the form's text) rewritten from the `earlier` datasets' or run's trigger words to this
    dataset's; None when nothing changes."""
    if not dataset_choice:
        return None
    _, trigger = advice.dataset_facts(ws.training_source(dataset_choice))
    lines = str(prompts or "").splitlines()
    changed = swap_trigger(lines, earlier, trigger)
    return "\n".join(changed) if changed != lines else None


def finished_notice(before: tuple | None, summary: monitor.RunSummary | None) -> str | None:
    """A sentence when the run the page watched just ended (a status it had not shown before); None otherwise."""
    if summary is None or not before or before[0] != summary.run_id or before[-1] == summary.status:
        return None
    if before[-1] not in ("created", "running"):
        return None
    if summary.status == "finished":
        return (
            f"{FINISHED}: **{summary.label}**, {summary.step} steps. Try it in the Playground (its LoRA "
            "slots list it) or score its checkpoints in Runs."
        )
    if summary.status in ("failed", "cancelled", "interrupted"):
        return f"{ENDED} ({summary.status}): **{summary.label}** at step {summary.step}. {summary.reason or ''}".strip()
    return None


def start_training(ws: Workspace, config: RunConfig, dataset_choice: str | None) -> Path:
    return ws.start_training(config, dataset_choice)


def shown_run(ws: Workspace) -> Path | None:
    """The run the Train tab follows: the one training, else the one touched last."""
    folders = [f for f in ws.runs_root.glob("*") if (f / runs.CONFIG).is_file()] if ws.runs_root.is_dir() else []
    if not folders:
        return None
    for state in ws.jobs.running():
        return state.folder

    def touched(folder: Path) -> float:
        events = folder / runs.EVENTS
        return (events if events.is_file() else folder / runs.CONFIG).stat().st_mtime

    return max(folders, key=touched)


def run_settings(ws: Workspace, run_dir: Path) -> tuple[RunConfig, str | None]:
    """The run's resolved config (its config.yaml) and the dataset choice it trained on, if it is still here."""
    config = load_config_file(run_dir / runs.CONFIG)
    try:
        source = Path(json.loads((run_dir / runs.DATASET).read_text(encoding="utf-8"))["source"])
        choice = source.resolve().relative_to(ws.datasets_root.resolve()).as_posix()
    except (OSError, ValueError, KeyError, TypeError):
        return config, None  # a dataset from outside this workspace (the CLI), or a broken file
    known = {value for _, value in ws.training_sources()}
    return config, choice if choice in known else None


def toast(message: str | None) -> None:
    """The message box's text as a toast too, when it announces a run's end (finished_notice)."""
    text = str(message or "")
    if text.startswith(FINISHED):
        gr.Success(text.removeprefix("✓ ").replace("**", ""), duration=8)
    elif text.startswith(ENDED):
        gr.Warning(text.removeprefix("⚠ ").replace("**", ""), duration=8)


def live_summary(ws: Workspace) -> monitor.RunSummary | None:
    run_dir = shown_run(ws)
    return monitor.summarise(run_dir) if run_dir else None


# ------------------------------------------------------------------ layout and wiring


def build(
    loaded: gr.events.Dependency,
    tab: gr.Tab,
    workspaces: Workspaces,
    opened: gr.Dropdown | None = None,
    prepared: gr.State | None = None,
) -> None:
    """`loaded`: the page's load event that knows the visitor; the tab loads its data after it. `opened`: the
    Dataset tab's picker, `prepared`: the copy last prepared there: the Train tab offers the dataset just made or
    opened in the Dataset tab, or its prepared copy."""
    defaults = resolve_config(preset=DEFAULT_PRESET)
    by_method = presets_by_method()
    form = ConfigForm()
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=420):
            with gr.Row():
                method = gr.Dropdown(
                    [(label, name) for name, label in METHODS.items()], value=defaults.method, label="Method",
                    info="LoRA: small add-on · DreamBooth: a subject · Textual Inversion: one new word · "
                    "Full fine-tune: a style · SVDiff: tiny spectral shifts",
                    elem_id="train-method",
                )  # fmt: skip
                preset = gr.Dropdown(
                    by_method[defaults.method], value=DEFAULT_PRESET, label="Preset",
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
        with gr.Column(scale=3, min_width=520):
            advice_box = gr.Markdown(elem_id="train-advice")
            # the fix for a config this machine cannot train (fp16 without a GPU), beside the warning that names it
            cpu_fix = gr.Button(
                "Train in full precision (no GPU here)", visible=False, size="sm", elem_id="train-cpu-fix"
            )
            with gr.Row():
                start = gr.Button("Start training", variant="primary", elem_id="train-start")
                cancel = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
                resume = gr.Button("Resume", elem_id="train-resume")
                # the queue is a private studio's: a visitor of a public one trains one run at a time
                add = gr.Button("Add to queue", elem_id="train-queue-add", visible=not workspaces.public)
            message = gr.Markdown(elem_id="train-message")
            view = RunView("train", workspaces.served_copy)
    seen = gr.State(None)  # what the page shows (run, events, status): unchanged -> nothing is re-sent
    followed = gr.State(None)  # the id of the run shown; when it changes, the form shows that run's settings
    timer = gr.Timer(1.0, active=False)  # started once the page knows its visitor

    form_inputs = form.components | {method, dataset}
    followed_outputs = [method, preset, dataset, *form.outputs]

    def config_of(values: dict) -> RunConfig:
        return config_from_values(values[method], form.read(values))

    def on_method(chosen: str):
        names = by_method.get(chosen, [])
        return gr.Dropdown(choices=names, value=names[0] if names else None)

    @friendly
    def on_preset(name: str):
        if not name:  # an empty dict is not "no change" to Gradio: skip every output
            return {component: gr.skip() for component in form.outputs}
        return form.updates(resolve_config(preset=name))

    def on_change(values: dict):
        """The advice, and the full-precision button when the config needs a GPU this machine lacks."""
        try:
            config = config_of(values)
            return advise(workspaces.get(), config, values[dataset]), gr.Button(
                visible=hardware.device_problem(config) is not None
            )
        except ValueError as error:  # a half-typed value: say what is wrong, quietly
            return f"⚠ {error}", gr.Button(visible=False)

    @friendly
    def on_cpu_fix(values: dict):
        fixed = hardware.for_this_machine(config_of(values))
        fields = form.updates(fixed)
        keep = {form.fields["training.mixed_precision"], form.fields["training.device"]}
        return {component: value for component, value in fields.items() if component in keep} | {
            message: f"Mixed precision is now **{fixed.training.mixed_precision}** and device "
            f"**{fixed.training.device}**: this machine trains on its CPU, in full precision."
        }

    prompts_field = form.fields["training.sample_prompts"]

    def on_dataset_prompts(values: dict):
        """Sample prompts follow the dataset: the trigger of the one shown before (or of the run the form shows)
        becomes this one's, so validation samples test the concept being trained."""
        ws = workspaces.get()
        earlier = set(values[last_trigger] or []) | {TRIGGER_PLACEHOLDER}  # a preset's <trigger> shows the word
        if values[followed]:
            try:
                earlier.add(run_names.identity(ws.run_path(values[followed])).trigger or "")
            except ValueError:
                pass  # deleted meanwhile
        try:
            trigger = advice.dataset_facts(ws.training_source(values[dataset]))[1] if values[dataset] else None
            text = retarget_prompts(ws, values[prompts_field], values[dataset], earlier)
        except ValueError:  # a dataset gone since it was listed
            return gr.skip(), gr.skip()
        return (text if text is not None else gr.skip()), [trigger] if trigger else []

    def on_recommend(choice: str | None):
        """An example dataset picked here brings the method and preset its description recommends."""
        example = example_of(choice)
        if example is None:
            return gr.skip(), gr.skip(), ""
        note = f"The example recommends **{METHODS[example.method]}** with **{example.preset}**: applied."
        return example.method, gr.Dropdown(choices=by_method.get(example.method, []), value=example.preset), note

    def on_datasets(current=None, just_opened: str | None = None, copy: str | None = None, offered=None):
        """The datasets on disk; keeps the picked one unless the Dataset tab opened another (or prepared a copy of
        the one open there) since it was last offered here."""
        choices = workspaces.get().training_sources()
        values = [value for _, value in choices]
        offer = copy if copy and just_opened and copy.startswith(f"{just_opened}/prepared/") else just_opened
        if offer and offer != offered and offer in values:
            current = offer
        value = current if current in values else values[0] if values else None
        picked_now = offer if offer and offer != offered and offer == value else None
        return gr.Dropdown(choices=choices, value=value), offer, picked_now

    def on_followed(values: dict):
        """Fill the form with the followed run's own settings (a reload would otherwise show the preset's)."""
        unchanged = {component: gr.skip() for component in followed_outputs}
        if not values[followed]:
            return unchanged
        ws = workspaces.get()
        if ws.queue.store.load().has_run(values[followed]):  # the queue's next entry must not overwrite the form
            return unchanged  # someone may be editing it to queue more
        try:
            config, choice = run_settings(ws, ws.run_path(values[followed]))
        except (OSError, ValueError):  # deleted meanwhile, or a config this version cannot read: keep the form
            log.warning("could not show the settings of run %s", values[followed], exc_info=True)
            return unchanged
        out = form.updates(config) | {method: config.method}
        if config.method != values[method]:  # another method's presets; none chosen, so nothing overwrites the form
            out[preset] = gr.Dropdown(choices=by_method.get(config.method, []), value=None)
        if choice:
            out[dataset] = gr.Dropdown(choices=ws.training_sources(), value=choice)
        return out

    @as_message
    def on_start(values: dict):
        run_dir = start_training(workspaces.get(), config_of(values), values[dataset])
        return (
            f"Started **{run_names.run_label(run_dir)}** (run {run_dir.name}). The chart fills in as it trains; "
            "you can close this page. Rename it in the Runs tab."
        )

    @as_message
    def on_cancel():
        ws = workspaces.get()
        run_dir = shown_run(ws)
        if run_dir is None:
            raise ValueError("there is no run to cancel")
        return ws.jobs.cancel(run_dir)

    @as_message
    def on_resume():
        ws = workspaces.get()
        run_dir = shown_run(ws)
        if run_dir is None:
            raise ValueError("there is no run to resume")
        ws.jobs.resume(run_dir)
        return f"Resuming run **{run_dir.name}** from its latest checkpoint."

    def on_tick(shown):
        unchanged = [gr.skip()] * (len(view.outputs) + 3)
        try:
            summary = live_summary(workspaces.get())
        except Exception:  # a tick that raised would badge the whole view "Error": log it, keep the page as it is
            log.exception("could not read the run for the live view")
            return unchanged
        signature = (summary.run_id, summary.event_count, summary.status) if summary else ("no run",)
        if signature == shown:
            return unchanged
        # the run just ended: its notice replaces whatever the message said ("... is still training")
        notice = finished_notice(shown, summary)
        return [*view.values(summary), signature, summary.run_id if summary else None, notice or gr.skip()]

    method.input(on_method, method, preset, api_visibility="private")
    # a preset chosen by hand: the note about the example's recommendation no longer describes the form
    gr.on([method.input, preset.input], lambda: "", None, preset_note, api_visibility="private")
    advised = [advice_box, cpu_fix]
    # the trigger word the sample prompts were last written for (a list: a State's value is JSON)
    last_trigger = gr.State([])
    prompt_inputs, prompt_outputs = {dataset, prompts_field, last_trigger, followed}, [prompts_field, last_trigger]
    preset.change(on_preset, preset, form.outputs, api_visibility="private").then(
        on_dataset_prompts, prompt_inputs, prompt_outputs, api_visibility="private"
    ).then(on_change, form_inputs, advised, api_visibility="private")
    gr.on(
        [c.input for c in form.fields.values()] + [dataset.change],
        on_change, form_inputs, advised, trigger_mode="always_last", show_progress="hidden",
        api_visibility="private",
    )  # fmt: skip
    cpu_fix.click(
        on_cpu_fix, form_inputs, [form.fields["training.mixed_precision"], form.fields["training.device"], message],
        api_visibility="private",
    ).then(on_change, form_inputs, advised, api_visibility="private")  # fmt: skip
    dataset.change(on_dataset_prompts, prompt_inputs, prompt_outputs, api_visibility="private")
    recommended = [method, preset, preset_note]
    dataset.input(on_recommend, dataset, recommended, api_visibility="private")
    # which Dataset-tab dataset was last offered here: picking another one here afterwards is not undone
    offered, picked_now = gr.State(None), gr.State(None)
    sources = [dataset, opened or gr.State(None), prepared or gr.State(None), offered]
    refresh.click(on_datasets, sources, [dataset, offered, picked_now], api_visibility="private").then(
        on_recommend, picked_now, [method, preset, preset_note], api_visibility="private"
    )
    start.click(on_start, form_inputs, message, api_visibility="private")
    cancel.click(on_cancel, None, message, api_visibility="private")
    resume.click(on_resume, None, message, api_visibility="private")
    live = [*view.outputs, seen, followed, message]
    timer.tick(on_tick, seen, live, show_progress="hidden", queue=False, api_visibility="private")
    # a run's end said once more as a toast, from a queued event (the tick is unqueued: it cannot toast)
    message.change(toast, message, None, show_progress="hidden", api_visibility="private")
    followed.change(on_followed, {followed, method}, followed_outputs, api_visibility="private").then(
        on_change, form_inputs, advised, api_visibility="private"
    )
    # every page load starts from disk: the datasets there and the run that is (or was last) going
    listed = [dataset, offered, picked_now]
    loaded.then(on_datasets, sources, listed, api_visibility="private")
    tab.select(on_datasets, sources, listed, api_visibility="private").then(
        on_recommend, picked_now, recommended, api_visibility="private"
    )
    loaded.then(on_tick, seen, live, api_visibility="private").then(
        lambda: gr.Timer(active=True), None, timer, api_visibility="private"
    )
    if not workspaces.public:
        queue_panel.build(workspaces, add, config_of, form_inputs, dataset, loaded)
