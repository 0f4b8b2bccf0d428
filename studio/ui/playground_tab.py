"""Playground tab: a prompt with stacked LoRAs (each with a weight and an on/off switch), an SVDiff file and
embeddings; the LoRA mix can be saved as one LoRA file.

Laid out as AUTOMATIC1111 and ComfyUI users expect: the prompt, Generate and the results at the top, side by side
on a wide screen and one after the other on a narrow one; the settings and adapters below them.

UI only: every button calls the generation engine (studio.generate) that the CLI and the tests use too. Files come
from our runs or from uploads copied into the data folder; a path from anywhere else is refused. The form's values
are one named structure (`PlaygroundForm`), shared by Generate, "Send to compare", a dropped PNG and a page reload.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from studio.adapters.stack import BLOCKS
from studio.generate import fast as fast_sampling
from studio.generate import library
from studio.generate.engine import MAX_COUNT, GenerationEngine, GenerationSettings, save_images
from studio.generate.png_metadata import read_params
from studio.generate.samplers import sampler_labels
from studio.generate.scoping import scope_to_prompt
from studio.train.which_file import WHICH_FILE_FOR_WHICH_TOOL
from studio.ui.gallery import results_gallery
from studio.ui.playground_form import (
    SLOTS,
    WEIGHT_RANGE,
    PlaygroundForm,
    Slot,
    block_weights,
    embedding_choices,
    lora_choices,
    svdiff_choices,
)
from studio.ui.remembered import Memory

__all__ = ["SLOTS", "Playground", "Slot", "block_weights", "build"]


def _help(name: str) -> str:
    return GenerationSettings.__dataclass_fields__[name].metadata["help"]


@dataclass
class Playground:
    """What other tabs and the page wire to: the "Send to compare" button, the form (its settings as a dict, and
    back), and the adapter lists to read again when a run finishes."""

    send_button: gr.Button
    form: PlaygroundForm
    refresh_lists: Callable  # (values: dict) -> dict of dropdown updates

    @property
    def inputs(self) -> set:
        return set(self.form.components)

    def settings(self, values: dict) -> dict:
        return self.form.settings(values)

    @property
    def list_components(self) -> list:
        return self.form.list_components

    def memory(self) -> Memory:
        """The prompt, settings and adapter stack: what a page reload gives back (as a dropped PNG does)."""
        components = self.form.components
        return Memory("playground", components, self.form.settings, lambda saved: self.form.updates(saved)[0],
                      components)  # fmt: skip


def _prompt_and_results() -> tuple:
    """The top of the tab: the prompt and Generate beside the results (below them on a narrow screen)."""
    with gr.Row(equal_height=False):
        # min widths: two columns need about 900 px; narrower, the results wrap under the prompt and Generate
        with gr.Column(scale=2, min_width=380):
            prompt = gr.Textbox(
                label="Prompt", value="a red circle on a black background", lines=3, elem_id="pg-prompt"
            )
            negative = gr.Textbox(label="Negative prompt", lines=1, elem_id="pg-negative")
            with gr.Row():
                button = gr.Button("Generate", variant="primary", size="lg", scale=3, elem_id="pg-generate")
                send = gr.Button("Send to compare", scale=2, min_width=160, elem_id="pg-send")
        with gr.Column(scale=3, min_width=480):
            gallery = results_gallery("pg-gallery", height=340)
            status = gr.Markdown(elem_id="pg-status")
    return prompt, negative, button, send, gallery, status


def _settings_rows() -> dict:
    defaults = GenerationSettings(prompt="-")
    with gr.Accordion("Settings", open=True, elem_id="pg-settings"):
        with gr.Row():
            sampler = gr.Dropdown(
                label="Sampler",
                choices=[(label, name) for name, label in sampler_labels().items()],
                value="default",
                elem_id="pg-sampler",
            )
            steps = gr.Slider(1, 100, value=defaults.steps, step=1, label="Steps", elem_id="pg-steps")
            guidance = gr.Slider(0, 20, value=defaults.guidance, step=0.5, label="Guidance", elem_id="pg-guidance")
            count = gr.Slider(1, MAX_COUNT, value=2, step=1, label="Images", elem_id="pg-count")
        with gr.Row():
            seed = gr.Number(value=0, precision=0, label="Seed", info=_help("seed"), elem_id="pg-seed")
            model = gr.Textbox(value="pocket", label="Base model", elem_id="pg-model")
            fast = gr.Checkbox(value=False, label="Fast (LCM, 4 steps)", info=_help("fast"), elem_id="pg-fast")
            quantize = gr.Radio(
                choices=[("Float", "none"), ("Int8 weights", "int8")],
                value="none",
                label="Precision",
                info=_help("quantize"),
                elem_id="pg-quantize",
            )
    return dict(sampler=sampler, steps=steps, guidance=guidance, count=count, seed=seed, model=model, fast=fast,
                quantize=quantize)  # fmt: skip


def _lora_slots() -> list[Slot]:
    slots = []
    for index in range(SLOTS):
        with gr.Row(equal_height=True):
            slots.append(
                Slot(
                    gr.Dropdown(
                        choices=lora_choices(), value="", label=f"LoRA {index + 1}", scale=4,
                        elem_id=f"pg-lora-{index}",
                    ),
                    gr.Slider(*WEIGHT_RANGE, value=1.0, step=0.05, label="Weight", scale=3,
                              elem_id=f"pg-weight-{index}"),
                    gr.Checkbox(value=True, label="On", scale=1, min_width=60, elem_id=f"pg-on-{index}"),
                )
            )  # fmt: skip
    return slots


def build(engine: GenerationEngine) -> Playground:
    prompt, negative, button, send, gallery, status = _prompt_and_results()
    basics = _settings_rows()

    with gr.Accordion("LoRAs", open=True, elem_id="pg-loras"):
        gr.Markdown("From your runs or uploaded files. Weight below 0 pushes away from a LoRA's concept.")
        slots = _lora_slots()
        with gr.Row():
            lora_upload = gr.File(
                label="Upload LoRA (.safetensors)", file_types=[".safetensors"], height=110, elem_id="pg-lora-upload"
            )
            with gr.Column(scale=0, min_width=160):
                refresh = gr.Button("Refresh list", size="sm", elem_id="pg-refresh")
                fuse = gr.Checkbox(value=False, label="Fuse for speed", info=_help("fuse"), elem_id="pg-fuse")
        stacking = gr.Radio(
            choices=[
                ("Each on its trigger's prompts", "scoped"),
                ("Apart (LoRA Composite, slower)", "composite"),
                ("All summed", "sum"),
            ],
            value="scoped",
            label="How LoRAs stack",
            info=_help("stacking"),
            elem_id="pg-stacking",
        )
        with gr.Accordion("Per-block weights (experts)", open=False):
            gr.Markdown(
                "Multiply a LoRA's weight on the UNet's down, middle and up blocks, e.g. to keep its style "
                "but not its layout; which blocks carry what differs by LoRA (try a Compare grid). 1 everywhere: the plain weight."
            )
            for index, slot in enumerate(slots):
                with gr.Row():
                    for name in BLOCKS:
                        slot.blocks[name] = gr.Slider(
                            0, 2, value=1.0, step=0.05, label=f"LoRA {index + 1}: {name}", min_width=90,
                            elem_id=f"pg-block-{index}-{name}",
                        )  # fmt: skip
        with gr.Accordion("Save this mix as one LoRA", open=True):
            with gr.Row(equal_height=False):
                mix_name = gr.Textbox(
                    label="Name",
                    placeholder="my-mix",
                    info="The LoRAs switched on, at their weights (per-block too), merged exactly into one file.",
                    scale=3,
                    elem_id="pg-mix-name",
                )
                save_mix_button = gr.Button("Save mix", scale=1, min_width=100, elem_id="pg-save-mix")
            mix_message = gr.Markdown(elem_id="pg-mix-message")  # under its button, not in the other column
            mix_file = gr.File(label="Saved mix", interactive=False, visible=False, elem_id="pg-mix-file")
            with gr.Accordion("Which file for which tool", open=False):
                gr.Markdown(
                    "A saved mix is a kohya-format file: use it where the table says `lora-kohya.safetensors`.\n"
                    + WHICH_FILE_FOR_WHICH_TOOL,
                    elem_id="pg-which-file",
                )
    with gr.Accordion("SVDiff", open=False):
        with gr.Row(equal_height=True):
            svdiff = gr.Dropdown(
                choices=svdiff_choices(), value="", label="Spectral shifts (an SVDiff run or file)", scale=4,
                elem_id="pg-svdiff",
            )  # fmt: skip
            svdiff_weight = gr.Slider(
                *WEIGHT_RANGE, value=1.0, step=0.05, label="Scale", scale=3, elem_id="pg-svdiff-weight"
            )
        svdiff_upload = gr.File(
            label="Upload SVDiff shifts (.safetensors)", file_types=[".safetensors"], elem_id="pg-svdiff-upload"
        )
    with gr.Accordion("Embeddings", open=False):
        embeddings = gr.Dropdown(
            choices=embedding_choices(),
            value=[],
            multiselect=True,
            label="Textual-inversion embeddings",
            info="Write the embedding's token in the prompt (shown below after generating).",
            elem_id="pg-embeddings",
        )
        embedding_upload = gr.File(
            label="Upload embedding (.safetensors)", file_types=[".safetensors"], elem_id="pg-emb-upload"
        )
    with gr.Accordion("An image's settings", open=True):
        with gr.Row(equal_height=False):
            details = gr.JSON(label="Settings of the selected image", elem_id="pg-details")
            restore = gr.File(
                label="Drop a studio PNG here to restore its settings", file_types=[".png"], height=120,
                elem_id="pg-restore",
            )  # fmt: skip

    form = PlaygroundForm(
        prompt=prompt, negative=negative, fuse=fuse, stacking=stacking, embeddings=embeddings, svdiff=svdiff,
        svdiff_weight=svdiff_weight, slots=slots, **basics,
    )  # fmt: skip
    others = dict(
        button=button, gallery=gallery, status=status, details=details, restore=restore, refresh=refresh,
        lora_upload=lora_upload, embedding_upload=embedding_upload, svdiff_upload=svdiff_upload,
        mix_name=mix_name, save_mix_button=save_mix_button, mix_file=mix_file, mix_message=mix_message,
    )  # fmt: skip
    _wire(engine, form, others)
    return Playground(send, form, form.refreshed_lists)


def _wire(engine: GenerationEngine, form: PlaygroundForm, c: dict) -> None:
    """The tab's events; `c`: its components by the names `build` gave them."""
    gallery, status, details, restore = c["gallery"], c["status"], c["details"], c["restore"]
    state = gr.State([])  # parameters of the images in the gallery, in order
    inputs = set(form.components)

    def fast_toggled(on: bool):
        values = fast_sampling.form_values(bool(on))
        return {form.sampler: values["sampler"], form.steps: values["steps"], form.guidance: values["guidance"]}

    def run(values: dict, progress=gr.Progress()):
        try:
            settings = GenerationSettings.from_dict(form.settings(values))
            progress(0, desc="loading model and adapters")
            results = engine.generate(settings, on_step=lambda done, total: progress(done / total, desc="denoising"))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from error
        paths = save_images(results, library.data_dir() / "outputs")
        params = [r.params for r in results]
        tokens = [t for _, t in engine.adapters(engine.load(settings.model, settings.quantize).pipe).embeddings]
        active = sum(1 for spec in settings.lora_specs if spec.enabled)
        acting = active
        if settings.stacking != "sum":  # LoRAs whose trigger the prompt does not say sat this one out
            acting = sum(1 for spec in scope_to_prompt(settings.lora_specs, settings.prompt) if spec.enabled)
        note = (
            f"{len(paths)} image(s), {params[0]['seconds']:.2f} s each, {active} LoRA(s) on"
            + (f", {acting} acting on this prompt" if acting != active else "")
            + (" (fused)" if settings.fuse and active else "")
            + (f", SVDiff at {settings.svdiffs[0]['weight']:g}" if settings.svdiffs else "")
            + (" (fast: LCM-LoRA included)" if settings.fast else "")
            + (" (int8 weights)" if settings.quantize == "int8" else "")
            + (f"; embedding tokens: {', '.join(f'`{t}`' for t in tokens)}" if tokens else "")
            + ". Saved to `data/outputs`."
        )
        return [str(p) for p in paths], note, params[0], params

    def select(params: list, event: gr.SelectData):
        return params[event.index] if 0 <= event.index < len(params) else None

    def upload_lora(values: dict):
        file = values[c["lora_upload"]]
        if not file:
            return {c["lora_upload"]: None}
        try:
            path = str(library.import_upload(file, "loras"))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from error
        choices = lora_choices()
        free = next((i for i, s in enumerate(form.slots) if not values[s.lora]), None)
        out = {
            s.lora: gr.Dropdown(choices=choices, value=path if i == free else values[s.lora])
            for i, s in enumerate(form.slots)
        }
        return out | {c["lora_upload"]: None}

    def upload_embedding(file, chosen: list):
        if not file:
            return gr.Dropdown(), None
        try:
            path = str(library.import_upload(file, "embeddings"))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from error
        return gr.Dropdown(choices=embedding_choices(), value=[*(chosen or []), path]), None

    def upload_svdiff(file):
        """An SVDiff export from elsewhere: checked to be one (a LoRA file is refused, naming why), kept, selected."""
        if not file:
            return gr.Dropdown(), None
        from studio.adapters.svdiff import read_shifts

        try:
            read_shifts(Path(file))
            path = str(library.import_upload(file, "svdiff"))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from error
        return gr.Dropdown(choices=svdiff_choices(), value=path), None

    def save_this_mix(values: dict):
        """The switched-on LoRAs at their weights -> one new file in data/loras/, listed and offered for download."""
        from studio.adapters.kohya import kohya_consumer_warnings
        from studio.generate.mix import describe_mix, save_mix

        try:
            settings = GenerationSettings.from_dict(form.settings(values) | {"fast": False})
            specs = [spec for spec in settings.lora_specs if spec.enabled]
            if not specs:
                raise ValueError("switch on at least one LoRA to save a mix")
            path = save_mix(engine, settings.model, specs, library.new_file("loras", values[c["mix_name"]] or "mix"))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from error
        note = f"Saved the mix ({describe_mix(specs)}) as `loras/{path.name}`: choose it as one LoRA at weight 1."
        note += "".join(f"\n\n{warning}" for warning in kohya_consumer_warnings(path))
        choices = lora_choices()
        return *[gr.Dropdown(choices=choices) for _ in form.slots], note, gr.File(value=str(path), visible=True)

    def restore_settings(file):
        """A PNG of ours -> the form; adapters outside the data folder are left out (and said so)."""
        params = read_params(file) if file else None
        if not params:
            raise gr.Error("that image carries no studio settings (only PNGs made here do)")
        params = {key: value for key, value in params.items() if key != "count"}  # one image's: keep the count
        updates, skipped = form.updates(params)
        note = f"Restored the settings of seed {params.get('seed')}."
        if skipped:
            note += f" Left out (outside the data folder, or gone): {', '.join(skipped)}."
        return updates | {status: note, restore: None}

    outputs = [gallery, status, details, state]
    c["button"].click(run, inputs=inputs, outputs=outputs, concurrency_id="engine", api_name="playground_generate")
    form.prompt.submit(
        run, inputs=inputs, outputs=outputs, concurrency_id="engine", api_name="playground_generate_submit",
        api_visibility="private",
    )  # fmt: skip
    gallery.select(select, inputs=state, outputs=details, api_name="playground_select", api_visibility="private")
    c["refresh"].click(
        form.refreshed_lists,
        inputs={*form.list_components},
        outputs=form.list_components,
        api_name="playground_refresh",
    )
    slot_dropdowns = [s.lora for s in form.slots]
    c["lora_upload"].upload(
        upload_lora,
        inputs={c["lora_upload"], *slot_dropdowns},
        outputs=[*slot_dropdowns, c["lora_upload"]],
        api_name="playground_upload_lora",
    )
    c["embedding_upload"].upload(
        upload_embedding,
        inputs=[c["embedding_upload"], form.embeddings],
        outputs=[form.embeddings, c["embedding_upload"]],
        api_name="playground_upload_embedding",
    )
    c["svdiff_upload"].upload(
        upload_svdiff, inputs=c["svdiff_upload"], outputs=[form.svdiff, c["svdiff_upload"]],
        api_name="playground_upload_svdiff",
    )  # fmt: skip
    restore.upload(
        restore_settings,
        inputs=restore,
        outputs=[*form.components, status, restore],
        api_name="playground_restore",
    )
    c["save_mix_button"].click(
        save_this_mix,
        inputs=inputs | {c["mix_name"]},
        outputs=[*slot_dropdowns, c["mix_message"], c["mix_file"]],
        concurrency_id="engine",
        api_name="playground_save_mix",
    )
    # .input, not .change: restoring a PNG sets the box too, and must keep the PNG's own steps and guidance
    form.fast.input(
        fast_toggled,
        inputs=form.fast,
        outputs=[form.sampler, form.steps, form.guidance],
        api_name="playground_fast",
        api_visibility="private",
    )
