"""The Playground's components by name, laid out as AUTOMATIC1111 and ComfyUI users expect: the prompt, Generate
and the results at the top, the settings and adapters below them. The settings are one `PlaygroundForm`; the other
components (buttons, uploads, results) are `PlaygroundControls`. The wiring is `studio.ui.playground_tab`'s."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from studio.adapters.stack import BLOCKS
from studio.generate.engine import MAX_COUNT, GenerationSettings
from studio.generate.samplers import sampler_labels
from studio.train.which_file import WHICH_FILE_FOR_WHICH_TOOL
from studio.ui.gallery import results_gallery
from studio.ui.playground_form import (
    SLOTS,
    WEIGHT_RANGE,
    PlaygroundForm,
    Slot,
    embedding_choices,
    lora_choices,
    svdiff_choices,
)


def _help(name: str) -> str:
    return GenerationSettings.__dataclass_fields__[name].metadata["help"]


@dataclass
class PlaygroundControls:
    """The tab's components besides the form's, by name."""

    button: gr.Button
    send: gr.Button
    gallery: gr.Gallery
    status: gr.Markdown
    refresh: gr.Button
    lora_upload: gr.File
    mix_name: gr.Textbox
    save_mix: gr.Button
    mix_message: gr.Markdown
    mix_file: gr.File
    svdiff_upload: gr.File
    embedding_upload: gr.File
    details: gr.JSON
    restore: gr.File


def lay_out() -> tuple[PlaygroundForm, PlaygroundControls]:
    """The whole tab, top to bottom; the settings are the form's, the rest the controls'."""
    top = _prompt_and_results()
    basics = _settings_rows()
    with gr.Accordion("LoRAs", open=True, elem_id="pg-loras"):
        loras = _lora_section()
    with gr.Accordion("SVDiff", open=False):
        svdiff = _svdiff_section()
    with gr.Accordion("Embeddings", open=False):
        embeddings = _embeddings_section()
    with gr.Accordion("An image's settings", open=True):
        with gr.Row(equal_height=False):
            details = gr.JSON(label="Settings of the selected image", elem_id="pg-details")
            restore = gr.File(
                label="Drop a studio PNG here to restore its settings", file_types=[".png"], height=120,
                elem_id="pg-restore",
            )  # fmt: skip
    named = top | basics | loras | svdiff | embeddings
    form = PlaygroundForm(**{name: named.pop(name) for name in PlaygroundForm.__dataclass_fields__})
    return form, PlaygroundControls(**named, details=details, restore=restore)


def _prompt_and_results() -> dict:
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
    return dict(prompt=prompt, negative=negative, button=button, send=send, gallery=gallery, status=status)


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


def _lora_section() -> dict:
    """The LoRA slots, an upload, how they stack, their per-block weights and "Save this mix"."""
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
        _block_sliders(slots)
    with gr.Accordion("Save this mix as one LoRA", open=True):
        mix = _save_mix_section()
    return dict(slots=slots, lora_upload=lora_upload, refresh=refresh, fuse=fuse, stacking=stacking) | mix


def _block_sliders(slots: list[Slot]) -> None:
    """Each slot's down / mid / up multipliers, into `slot.blocks`."""
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


def _save_mix_section() -> dict:
    with gr.Row(equal_height=False):
        mix_name = gr.Textbox(
            label="Name",
            placeholder="my-mix",
            info="The LoRAs switched on, at their weights (per-block too), merged exactly into one file.",
            scale=3,
            elem_id="pg-mix-name",
        )
        save_mix = gr.Button("Save mix", scale=1, min_width=100, elem_id="pg-save-mix")
    mix_message = gr.Markdown(elem_id="pg-mix-message")  # under its button, not in the other column
    mix_file = gr.File(label="Saved mix", interactive=False, visible=False, elem_id="pg-mix-file")
    with gr.Accordion("Which file for which tool", open=False):
        gr.Markdown(
            "A saved mix is a kohya-format file: use it where the table says `lora-kohya.safetensors`.\n"
            + WHICH_FILE_FOR_WHICH_TOOL,
            elem_id="pg-which-file",
        )
    return dict(mix_name=mix_name, save_mix=save_mix, mix_message=mix_message, mix_file=mix_file)


def _svdiff_section() -> dict:
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
    return dict(svdiff=svdiff, svdiff_weight=svdiff_weight, svdiff_upload=svdiff_upload)


def _embeddings_section() -> dict:
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
    return dict(embeddings=embeddings, embedding_upload=embedding_upload)
