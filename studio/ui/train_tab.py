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
from studio.ui.tab import Answer, BuiltTab
from studio.ui.train_layout import TrainControls, lay_out
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
    workspaces: Workspaces,
    opened: gr.Dropdown | None = None,
    prepared: gr.State | None = None,
) -> BuiltTab:
    """`loaded`: the page's load event that knows the visitor; the tab loads its data after it. `opened`: the
    Dataset tab's picker, `prepared`: the copy last prepared there: the Train tab offers the dataset just made or
    opened in the Dataset tab, or its prepared copy."""
    by_method = presets_by_method()
    ui = lay_out(ConfigForm(), DEFAULT_PRESET, by_method, workspaces, opened, prepared)
    timer = gr.Timer(1.0, active=False)  # started once the page knows its visitor
    handlers = _Handlers(ui, workspaces, by_method)
    _wire_form(ui, handlers)
    _wire_datasets(ui, handlers)
    _wire_run(ui, handlers)
    timer.tick(handlers.on_tick, ui.seen, ui.live, show_progress="hidden", queue=False, api_visibility="private")
    # every page load starts from disk: the datasets there and the run that is (or was last) going
    loaded.then(handlers.on_datasets, ui.sources, ui.listed, api_visibility="private")
    loaded.then(handlers.on_tick, ui.seen, ui.live, api_visibility="private").then(
        lambda: gr.Timer(active=True), None, timer, api_visibility="private"
    )
    if not workspaces.public:
        queue_panel.build(workspaces, ui.add, handlers.config_of, ui.form_inputs, ui.dataset, loaded)
    return BuiltTab(
        on_select=Answer(
            handlers.on_datasets,
            ui.sources,
            ui.listed,
            then=Answer(handlers.on_recommend, ui.picked_now, ui.recommended),
        )
    )


class _Handlers:
    """The tab's event handlers; those with many inputs read them by component from one dict."""

    def __init__(self, ui: TrainControls, workspaces: Workspaces, by_method: dict[str, list[str]]) -> None:
        self.ui, self.workspaces, self.by_method = ui, workspaces, by_method

    def config_of(self, values: dict) -> RunConfig:
        return config_from_values(values[self.ui.method], self.ui.form.read(values))

    def on_method(self, chosen: str):
        names = self.by_method.get(chosen, [])
        return gr.Dropdown(choices=names, value=names[0] if names else None)

    @friendly
    def on_preset(self, name: str):
        if not name:  # an empty dict is not "no change" to Gradio: skip every output
            return {component: gr.skip() for component in self.ui.form.outputs}
        return self.ui.form.updates(resolve_config(preset=name))

    def on_change(self, values: dict):
        """The advice, and the full-precision button when the config needs a GPU this machine lacks."""
        try:
            config = self.config_of(values)
            return advise(self.workspaces.get(), config, values[self.ui.dataset]), gr.Button(
                visible=hardware.device_problem(config) is not None
            )
        except ValueError as error:  # a half-typed value: say what is wrong, quietly
            return f"⚠ {error}", gr.Button(visible=False)

    @friendly
    def on_cpu_fix(self, values: dict):
        form = self.ui.form
        fixed = hardware.for_this_machine(self.config_of(values))
        keep = {form.fields["training.mixed_precision"], form.fields["training.device"]}
        return {component: value for component, value in form.updates(fixed).items() if component in keep} | {
            self.ui.message: f"Mixed precision is now **{fixed.training.mixed_precision}** and device "
            f"**{fixed.training.device}**: this machine trains on its CPU, in full precision."
        }

    def on_dataset_prompts(self, values: dict):
        """Sample prompts follow the dataset: the trigger of the one shown before (or of the run the form shows)
        becomes this one's, so validation samples test the concept being trained."""
        ui, ws = self.ui, self.workspaces.get()
        earlier = set(values[ui.last_trigger] or []) | {TRIGGER_PLACEHOLDER}  # a preset's <trigger> shows the word
        if values[ui.followed]:
            try:
                earlier.add(run_names.identity(ws.run_path(values[ui.followed])).trigger or "")
            except ValueError:
                pass  # deleted meanwhile
        chosen = values[ui.dataset]
        try:
            trigger = advice.dataset_facts(ws.training_source(chosen))[1] if chosen else None
            text = retarget_prompts(ws, values[ui.prompts], chosen, earlier)
        except ValueError:  # a dataset gone since it was listed
            return gr.skip(), gr.skip()
        return (text if text is not None else gr.skip()), [trigger] if trigger else []

    def on_recommend(self, choice: str | None):
        """An example dataset picked here brings the method and preset its description recommends."""
        example = example_of(choice)
        if example is None:
            return gr.skip(), gr.skip(), ""
        note = f"The example recommends **{METHODS[example.method]}** with **{example.preset}**: applied."
        return example.method, gr.Dropdown(choices=self.by_method.get(example.method, []), value=example.preset), note

    def on_datasets(self, current=None, just_opened: str | None = None, copy: str | None = None, offered=None):
        """The datasets on disk; keeps the picked one unless the Dataset tab opened another (or prepared a copy of
        the one open there) since it was last offered here."""
        choices = self.workspaces.get().training_sources()
        values = [value for _, value in choices]
        offer = copy if copy and just_opened and copy.startswith(f"{just_opened}/prepared/") else just_opened
        if offer and offer != offered and offer in values:
            current = offer
        value = current if current in values else values[0] if values else None
        picked_now = offer if offer and offer != offered and offer == value else None
        return gr.Dropdown(choices=choices, value=value), offer, picked_now

    @property
    def followed_outputs(self) -> list:
        return [self.ui.method, self.ui.preset, self.ui.dataset, *self.ui.form.outputs]

    def on_followed(self, values: dict):
        """Fill the form with the followed run's own settings (a reload would otherwise show the preset's)."""
        ui, run_id = self.ui, values[self.ui.followed]
        unchanged = {component: gr.skip() for component in self.followed_outputs}
        if not run_id:
            return unchanged
        ws = self.workspaces.get()
        if ws.queue.store.load().has_run(run_id):  # the queue's next entry must not overwrite the form
            return unchanged  # someone may be editing it to queue more
        try:
            config, choice = run_settings(ws, ws.run_path(run_id))
        except (OSError, ValueError):  # deleted meanwhile, or a config this version cannot read: keep the form
            log.warning("could not show the settings of run %s", run_id, exc_info=True)
            return unchanged
        out = ui.form.updates(config) | {ui.method: config.method}
        if config.method != values[ui.method]:  # another method's presets; none chosen, so nothing overwrites the form
            out[ui.preset] = gr.Dropdown(choices=self.by_method.get(config.method, []), value=None)
        if choice:
            out[ui.dataset] = gr.Dropdown(choices=ws.training_sources(), value=choice)
        return out

    @as_message
    def on_start(self, values: dict):
        run_dir = start_training(self.workspaces.get(), self.config_of(values), values[self.ui.dataset])
        return (
            f"Started **{run_names.run_label(run_dir)}** (run {run_dir.name}). The chart fills in as it trains; "
            "you can close this page. Rename it in the Runs tab."
        )

    @as_message
    def on_cancel(self):
        ws = self.workspaces.get()
        run_dir = shown_run(ws)
        if run_dir is None:
            raise ValueError("there is no run to cancel")
        return ws.jobs.cancel(run_dir)

    @as_message
    def on_resume(self):
        ws = self.workspaces.get()
        run_dir = shown_run(ws)
        if run_dir is None:
            raise ValueError("there is no run to resume")
        ws.jobs.resume(run_dir)
        return f"Resuming run **{run_dir.name}** from its latest checkpoint."

    def on_tick(self, shown) -> dict:
        ui = self.ui
        unchanged = {component: gr.skip() for component in ui.live}
        try:
            summary = live_summary(self.workspaces.get())
        except Exception:  # a tick that raised would badge the whole view "Error": log it, keep the page as it is
            log.exception("could not read the run for the live view")
            return unchanged
        signature = (summary.run_id, summary.event_count, summary.status) if summary else ("no run",)
        if signature == shown:
            return unchanged
        # the run just ended: its notice replaces whatever the message said ("... is still training")
        notice = finished_notice(shown, summary)
        return ui.view.updates(summary) | {
            ui.seen: signature,
            ui.followed: summary.run_id if summary else None,
            ui.message: notice or gr.skip(),
        }


def _wire_form(ui: TrainControls, handlers: _Handlers) -> None:
    """Method and preset fill the form; every change is advised on."""
    ui.method.input(handlers.on_method, ui.method, ui.preset, api_visibility="private")
    # a preset chosen by hand: the note about the example's recommendation no longer describes the form
    gr.on([ui.method.input, ui.preset.input], lambda: "", None, ui.preset_note, api_visibility="private")
    prompts = ({ui.dataset, ui.prompts, ui.last_trigger, ui.followed}, [ui.prompts, ui.last_trigger])
    ui.preset.change(handlers.on_preset, ui.preset, ui.form.outputs, api_visibility="private").then(
        handlers.on_dataset_prompts, *prompts, api_visibility="private"
    ).then(handlers.on_change, ui.form_inputs, ui.advised, api_visibility="private")
    gr.on(
        [c.input for c in ui.form.fields.values()] + [ui.dataset.change],
        handlers.on_change, ui.form_inputs, ui.advised, trigger_mode="always_last", show_progress="hidden",
        api_visibility="private",
    )  # fmt: skip
    precision = [ui.form.fields["training.mixed_precision"], ui.form.fields["training.device"], ui.message]
    ui.cpu_fix.click(handlers.on_cpu_fix, ui.form_inputs, precision, api_visibility="private").then(
        handlers.on_change, ui.form_inputs, ui.advised, api_visibility="private"
    )
    ui.dataset.change(handlers.on_dataset_prompts, *prompts, api_visibility="private")


def _wire_datasets(ui: TrainControls, handlers: _Handlers) -> None:
    """The dataset picked brings its example's recommendation; the list is read again on ↻."""
    ui.dataset.input(handlers.on_recommend, ui.dataset, ui.recommended, api_visibility="private")
    ui.refresh.click(handlers.on_datasets, ui.sources, ui.listed, api_visibility="private").then(
        handlers.on_recommend, ui.picked_now, ui.recommended, api_visibility="private"
    )


def _wire_run(ui: TrainControls, handlers: _Handlers) -> None:
    """Start, Cancel, Resume; the run followed brings its own settings into the form."""
    ui.start.click(handlers.on_start, ui.form_inputs, ui.message, api_visibility="private")
    ui.cancel.click(handlers.on_cancel, None, ui.message, api_visibility="private")
    ui.resume.click(handlers.on_resume, None, ui.message, api_visibility="private")
    # a run's end said once more as a toast, from a queued event (the tick is unqueued: it cannot toast)
    ui.message.change(toast, ui.message, None, show_progress="hidden", api_visibility="private")
    ui.followed.change(handlers.on_followed, {ui.followed, ui.method}, handlers.followed_outputs,
                       api_visibility="private").then(handlers.on_change, ui.form_inputs, ui.advised,
                                                      api_visibility="private")  # fmt: skip
