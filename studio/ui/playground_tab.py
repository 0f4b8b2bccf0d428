"""Playground tab: a prompt with stacked LoRAs (each with a weight and an on/off switch), an SVDiff file and
embeddings; the LoRA mix can be saved as one LoRA file.

Laid out as AUTOMATIC1111 and ComfyUI users expect (`studio.ui.playground_layout`): the prompt, Generate and the
results at the top, side by side on a wide screen and one after the other on a narrow one; the settings and adapters
below them.

UI only: every button calls the generation engine (studio.generate) that the CLI and the tests use too. Files come
from our runs or from uploads copied into the data folder; a path from anywhere else is refused. The form's values
are one named structure (`PlaygroundForm`), shared by Generate, "Send to compare", a dropped PNG and a page reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from studio.generate import library
from studio.generate.engine import GenerationEngine, GenerationSettings, fast_form_values, save_images
from studio.generate.png_metadata import read_params
from studio.generate.scoping import scope_to_prompt
from studio.paths import data_dir
from studio.ui.errors import refusal
from studio.ui.playground_form import (
    SLOTS,
    PlaygroundForm,
    Slot,
    block_weights,
    embedding_choices,
    lora_choices,
    svdiff_choices,
)
from studio.ui.playground_layout import PlaygroundControls, lay_out
from studio.ui.tab import Answer, BuiltTab

__all__ = ["SLOTS", "Playground", "Slot", "block_weights", "build"]


@dataclass
class Playground(BuiltTab):
    """What other tabs wire to: the "Send to compare" button and the form (its settings as a dict, and back)."""

    send_button: gr.Button
    form: PlaygroundForm

    @property
    def inputs(self) -> set:
        return set(self.form.components)

    def settings(self, values: dict) -> dict:
        return self.form.settings(values)


def build(engine: GenerationEngine) -> Playground:
    form, ui = lay_out()
    _wire(_Handlers(engine, form, ui))
    lists = Answer(form.refreshed_lists, set(form.list_components), form.list_components, show_progress="hidden")
    return Playground(ui.send, form, memory=form.memory(), on_select=lists, on_runs_changed=lists)


def generation_note(settings: GenerationSettings, seconds: float, count: int, tokens: list[str]) -> str:
    """What a Generate did, in one line: how many images, how fast, which adapters acted."""
    active = sum(1 for spec in settings.lora_specs if spec.enabled)
    acting = active
    if settings.stacking != "sum":  # LoRAs whose trigger the prompt does not say sat this one out
        acting = sum(1 for spec in scope_to_prompt(settings.lora_specs, settings.prompt) if spec.enabled)
    return (
        f"{count} image(s), {seconds:.2f} s each, {active} LoRA(s) on"
        + (f", {acting} acting on this prompt" if acting != active else "")
        + (" (fused)" if settings.fuse and active else "")
        + (f", SVDiff at {settings.svdiffs[0]['weight']:g}" if settings.svdiffs else "")
        + (" (fast: LCM-LoRA included)" if settings.fast else "")
        + (" (int8 weights)" if settings.quantize == "int8" else "")
        + (f"; embedding tokens: {', '.join(f'`{t}`' for t in tokens)}" if tokens else "")
        + ". Saved to `data/outputs`."
    )


class _Handlers:
    """The tab's event handlers. A refusal (a path outside the data folder, a file of the wrong kind) is
    `errors.refusal`: its sentence for the person, one line in the log."""

    def __init__(self, engine: GenerationEngine, form: PlaygroundForm, ui: PlaygroundControls) -> None:
        self.engine, self.form, self.ui = engine, form, ui

    def fast_toggled(self, on: bool) -> dict:
        values = fast_form_values(bool(on))
        form = self.form
        return {form.sampler: values["sampler"], form.steps: values["steps"], form.guidance: values["guidance"]}

    def run(self, values: dict, progress=gr.Progress()):
        engine = self.engine
        try:
            settings = GenerationSettings.from_dict(self.form.settings(values))
            progress(0, desc="loading model and adapters")
            results = engine.generate(settings, on_step=lambda done, total: progress(done / total, desc="denoising"))
        except (ValueError, OSError) as error:
            raise refusal(str(error)) from error
        paths = save_images(results, data_dir() / "outputs")
        params = [r.params for r in results]
        tokens = [t for _, t in engine.adapters(engine.load(settings.model, settings.quantize).pipe).embeddings]
        note = generation_note(settings, params[0]["seconds"], len(paths), tokens)
        return [str(p) for p in paths], note, params[0], params

    def select(self, params: list, event: gr.SelectData):
        return params[event.index] if 0 <= event.index < len(params) else None

    def upload_lora(self, values: dict) -> dict:
        upload, slots = self.ui.lora_upload, self.form.slots
        file = values[upload]
        if not file:
            return {upload: None}
        try:
            path = str(library.import_upload(file, "loras"))
        except (ValueError, OSError) as error:
            raise refusal(str(error)) from error
        choices = lora_choices()
        free = next((i for i, s in enumerate(slots) if not values[s.lora]), None)
        out = {s.lora: gr.Dropdown(choices=choices, value=path if i == free else values[s.lora])
               for i, s in enumerate(slots)}  # fmt: skip
        return out | {upload: None}

    def upload_embedding(self, file, chosen: list):
        if not file:
            return gr.Dropdown(), None
        try:
            path = str(library.import_upload(file, "embeddings"))
        except (ValueError, OSError) as error:
            raise refusal(str(error)) from error
        return gr.Dropdown(choices=embedding_choices(), value=[*(chosen or []), path]), None

    def upload_svdiff(self, file):
        """An SVDiff export from elsewhere: checked to be one (a LoRA file is refused, naming why), kept, selected."""
        if not file:
            return gr.Dropdown(), None
        from studio.adapters.svdiff import read_shifts

        try:
            read_shifts(Path(file))
            path = str(library.import_upload(file, "svdiff"))
        except (ValueError, OSError) as error:
            raise refusal(str(error)) from error
        return gr.Dropdown(choices=svdiff_choices(), value=path), None

    def save_this_mix(self, values: dict):
        """The switched-on LoRAs at their weights -> one new file in data/loras/, listed and offered for download."""
        from studio.adapters.kohya import kohya_consumer_warnings
        from studio.generate.mix import describe_mix, save_mix

        try:
            settings = GenerationSettings.from_dict(self.form.settings(values) | {"fast": False})
            specs = [spec for spec in settings.lora_specs if spec.enabled]
            if not specs:
                raise ValueError("switch on at least one LoRA to save a mix")
            target = library.new_file("loras", values[self.ui.mix_name] or "mix")
            path = save_mix(self.engine, settings.model, specs, target)
        except (ValueError, OSError) as error:
            raise refusal(str(error)) from error
        note = f"Saved the mix ({describe_mix(specs)}) as `loras/{path.name}`: choose it as one LoRA at weight 1."
        note += "".join(f"\n\n{warning}" for warning in kohya_consumer_warnings(path))
        choices = lora_choices()
        return *[gr.Dropdown(choices=choices) for _ in self.form.slots], note, gr.File(value=str(path), visible=True)

    def restore_settings(self, file) -> dict:
        """A PNG of ours -> the form; adapters outside the data folder are left out (and said so)."""
        params = read_params(file) if file else None
        if not params:
            raise refusal("that image carries no studio settings (only PNGs made here do)")
        params = {key: value for key, value in params.items() if key != "count"}  # one image's: keep the count
        updates, skipped = self.form.updates(params)
        note = f"Restored the settings of seed {params.get('seed')}."
        if skipped:
            note += f" Left out (outside the data folder, or gone): {', '.join(skipped)}."
        return updates | {self.ui.status: note, self.ui.restore: None}


def _wire(handlers: _Handlers) -> None:
    form, ui = handlers.form, handlers.ui
    inputs = set(form.components)
    state = gr.State([])  # parameters of the images in the gallery, in order
    generated = [ui.gallery, ui.status, ui.details, state]
    ui.button.click(handlers.run, inputs=inputs, outputs=generated, concurrency_id="engine",
                    api_name="playground_generate")  # fmt: skip
    form.prompt.submit(
        handlers.run, inputs=inputs, outputs=generated, concurrency_id="engine", api_name="playground_generate_submit",
        api_visibility="private",
    )  # fmt: skip
    ui.gallery.select(handlers.select, inputs=state, outputs=ui.details, api_name="playground_select",
                      api_visibility="private")  # fmt: skip
    _wire_adapters(handlers)
    ui.restore.upload(
        handlers.restore_settings,
        inputs=ui.restore,
        outputs=[*form.components, ui.status, ui.restore],  # a dict by component comes back: order is immaterial
        api_name="playground_restore",
    )
    ui.save_mix.click(
        handlers.save_this_mix,
        inputs=inputs | {ui.mix_name},
        outputs=[*(s.lora for s in form.slots), ui.mix_message, ui.mix_file],
        concurrency_id="engine",
        api_name="playground_save_mix",
    )
    # .input, not .change: restoring a PNG sets the box too, and must keep the PNG's own steps and guidance
    form.fast.input(
        handlers.fast_toggled,
        inputs=form.fast,
        outputs=[form.sampler, form.steps, form.guidance],
        api_name="playground_fast",
        api_visibility="private",
    )


def _wire_adapters(handlers: _Handlers) -> None:
    """The lists read again, and the three uploads (each lands in the data folder and is selected)."""
    form, ui = handlers.form, handlers.ui
    ui.refresh.click(
        form.refreshed_lists, inputs={*form.list_components}, outputs=form.list_components,
        api_name="playground_refresh",
    )  # fmt: skip
    slot_dropdowns = [s.lora for s in form.slots]
    ui.lora_upload.upload(
        handlers.upload_lora,
        inputs={ui.lora_upload, *slot_dropdowns},
        outputs=[*slot_dropdowns, ui.lora_upload],
        api_name="playground_upload_lora",
    )
    ui.embedding_upload.upload(
        handlers.upload_embedding,
        inputs=[ui.embedding_upload, form.embeddings],
        outputs=[form.embeddings, ui.embedding_upload],
        api_name="playground_upload_embedding",
    )
    ui.svdiff_upload.upload(
        handlers.upload_svdiff, inputs=ui.svdiff_upload, outputs=[form.svdiff, ui.svdiff_upload],
        api_name="playground_upload_svdiff",
    )  # fmt: skip
