"""Playground tab: a prompt with stacked LoRAs (each with a weight and an on/off switch), an SVDiff file and
embeddings; the LoRA mix can be saved as one LoRA file.

UI only: every button calls the generation engine (studio.generate) that the CLI and the tests use too. Files come
from our runs or from uploads copied into the data folder; a path from anywhere else is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from studio.generate import fast as fast_sampling
from studio.generate import library
from studio.generate.adapters import BLOCKS
from studio.generate.engine import MAX_COUNT, GenerationEngine, GenerationSettings, save_images
from studio.generate.png_metadata import read_params
from studio.generate.samplers import sampler_labels
from studio.train.which_file import WHICH_FILE_FOR_WHICH_TOOL
from studio.ui.gallery import results_gallery

SLOTS = 4  # LoRAs stacked at once in the UI (the engine takes any number)
WEIGHT_RANGE = (-2.0, 2.0)


def _help(name: str) -> str:
    return GenerationSettings.__dataclass_fields__[name].metadata["help"]


def _lora_choices() -> list[tuple[str, str]]:
    return [("(none)", "")] + [(c.label, c.path) for c in library.list_loras()]


def _svdiff_choices() -> list[tuple[str, str]]:
    return [("(none)", "")] + [(c.label, c.path) for c in library.list_svdiffs()]


def _embedding_choices() -> list[tuple[str, str]]:
    return [(c.label, c.path) for c in library.list_embeddings()]


def _with_choice(choices: list[tuple[str, str]], path: str) -> list[tuple[str, str]]:
    """`choices`, plus `path` when a restored PNG names a file the list does not (yet) show."""
    return choices + [(path, path)] * (path not in {p for _, p in choices})


@dataclass
class Slot:
    lora: gr.Dropdown
    weight: gr.Slider
    enabled: gr.Checkbox
    blocks: dict = field(default_factory=dict)  # "down" | "mid" | "up" -> multiplier slider (experts)


def block_weights(values: dict, slot: Slot) -> dict | None:
    """The slot's per-block multipliers, or None when all are 1 (the plain weight applies everywhere)."""
    blocks = {name: float(values[slider]) for name, slider in slot.blocks.items()}
    return blocks if any(value != 1.0 for value in blocks.values()) else None


@dataclass
class Playground:
    """What other tabs wire to: the "Send to compare" button and a function from its inputs to settings."""

    send_button: gr.Button
    inputs: set
    settings: object  # callable(values: dict) -> dict of GenerationSettings fields


def build(engine: GenerationEngine) -> Playground:
    defaults = GenerationSettings(prompt="-")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            prompt = gr.Textbox(
                label="Prompt", value="a red circle on a black background", lines=2, elem_id="pg-prompt"
            )
            negative = gr.Textbox(label="Negative prompt", lines=1, elem_id="pg-negative")
            with gr.Row():
                sampler = gr.Dropdown(
                    label="Sampler",
                    choices=[(label, name) for name, label in sampler_labels().items()],
                    value="default",
                    elem_id="pg-sampler",
                )
                steps = gr.Slider(1, 100, value=defaults.steps, step=1, label="Steps", elem_id="pg-steps")
            with gr.Row():
                guidance = gr.Slider(0, 20, value=defaults.guidance, step=0.5, label="Guidance", elem_id="pg-guidance")
                count = gr.Slider(1, MAX_COUNT, value=2, step=1, label="Images", elem_id="pg-count")
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label="Seed", info=_help("seed"), elem_id="pg-seed")
                model = gr.Textbox(value="pocket", label="Base model", elem_id="pg-model")
            with gr.Row():
                fast = gr.Checkbox(value=False, label="Fast (LCM, 4 steps)", info=_help("fast"), elem_id="pg-fast")
                quantize = gr.Radio(
                    choices=[("Float", "none"), ("Int8 weights", "int8")],
                    value="none",
                    label="Precision",
                    info=_help("quantize"),
                    elem_id="pg-quantize",
                )

            with gr.Accordion("LoRAs", open=True):
                gr.Markdown("From your runs or uploaded files. Weight below 0 pushes away from a LoRA's concept.")
                slots = []
                for index in range(SLOTS):
                    with gr.Row(equal_height=True):
                        slots.append(
                            Slot(
                                gr.Dropdown(
                                    choices=_lora_choices(),
                                    value="",
                                    label=f"LoRA {index + 1}",
                                    scale=4,
                                    elem_id=f"pg-lora-{index}",
                                ),
                                gr.Slider(
                                    *WEIGHT_RANGE,
                                    value=1.0,
                                    step=0.05,
                                    label="Weight",
                                    scale=3,
                                    elem_id=f"pg-weight-{index}",
                                ),
                                gr.Checkbox(value=True, label="On", scale=1, min_width=60, elem_id=f"pg-on-{index}"),
                            )
                        )
                with gr.Row():
                    lora_upload = gr.File(
                        label="Upload LoRA (.safetensors)", file_types=[".safetensors"], elem_id="pg-lora-upload"
                    )
                    refresh = gr.Button("Refresh list", size="sm", elem_id="pg-refresh")
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
                fuse = gr.Checkbox(value=False, label="Fuse for speed", info=_help("fuse"), elem_id="pg-fuse")
                with gr.Row(equal_height=False):
                    mix_name = gr.Textbox(
                        label="Save this mix as one LoRA",
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
                        choices=_svdiff_choices(),
                        value="",
                        label="Spectral shifts (an SVDiff run or file)",
                        scale=4,
                        elem_id="pg-svdiff",
                    )
                    svdiff_weight = gr.Slider(
                        *WEIGHT_RANGE, value=1.0, step=0.05, label="Scale", scale=3, elem_id="pg-svdiff-weight"
                    )
                svdiff_upload = gr.File(
                    label="Upload SVDiff shifts (.safetensors)", file_types=[".safetensors"], elem_id="pg-svdiff-upload"
                )
            with gr.Accordion("Embeddings", open=False):
                embeddings = gr.Dropdown(
                    choices=_embedding_choices(),
                    value=[],
                    multiselect=True,
                    label="Textual-inversion embeddings",
                    info="Write the embedding's token in the prompt (shown below after generating).",
                    elem_id="pg-embeddings",
                )
                embedding_upload = gr.File(
                    label="Upload embedding (.safetensors)", file_types=[".safetensors"], elem_id="pg-emb-upload"
                )
            with gr.Row():
                button = gr.Button("Generate", variant="primary", elem_id="pg-generate")
                send = gr.Button("Send to compare", elem_id="pg-send")
        with gr.Column(scale=3):
            gallery = results_gallery("pg-gallery", height=360)
            status = gr.Markdown(elem_id="pg-status")
            details = gr.JSON(label="Settings of the selected image", elem_id="pg-details")
            restore = gr.File(
                label="Drop a studio PNG here to restore its settings", file_types=[".png"], elem_id="pg-restore"
            )

    state = gr.State([])
    slot_inputs = [c for s in slots for c in (s.lora, s.weight, s.enabled)]
    inputs = {
        prompt, negative, sampler, steps, guidance, count, seed, model, fuse, fast, quantize, embeddings, *slot_inputs
    }  # fmt: skip
    block_inputs = [slider for s in slots for slider in s.blocks.values()]
    inputs |= {svdiff, svdiff_weight, *block_inputs}

    def settings_dict(values: dict) -> dict:
        """The form as GenerationSettings fields; adapter paths must lie inside the data folder."""
        loras = [
            {
                "path": str(library.inside_data(values[s.lora])),
                "weight": float(values[s.weight]),
                "enabled": bool(values[s.enabled]),
            }
            | ({"blocks": block_weights(values, s)} if block_weights(values, s) else {})
            for s in slots
            if values[s.lora]
        ]
        return {
            "prompt": values[prompt],
            "negative_prompt": values[negative],
            "sampler": values[sampler],
            "steps": int(values[steps]),
            "guidance": float(values[guidance]),
            "count": int(values[count]),
            "seed": int(values[seed]),
            "model": values[model].strip() or "pocket",
            "loras": loras,
            "embeddings": [{"path": str(library.inside_data(p))} for p in values[embeddings] or []],
            "svdiffs": [{"path": str(library.inside_data(values[svdiff])), "weight": float(values[svdiff_weight])}]
            if values[svdiff]
            else [],
            "fuse": bool(values[fuse]),
            "fast": bool(values[fast]),
            "quantize": values[quantize],
        }

    def fast_toggled(on: bool):
        values = fast_sampling.form_values(bool(on))
        return values["sampler"], values["steps"], values["guidance"]

    def run(values: dict, progress=gr.Progress()):
        try:
            settings = GenerationSettings.from_dict(settings_dict(values))
            progress(0, desc="loading model and adapters")
            results = engine.generate(settings, on_step=lambda done, total: progress(done / total, desc="denoising"))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from error
        paths = save_images(results, library.data_dir() / "outputs")
        params = [r.params for r in results]
        tokens = [t for _, t in engine.adapters(engine.load(settings.model, settings.quantize).pipe).embeddings]
        active = sum(1 for spec in settings.lora_specs if spec.enabled)
        note = (
            f"{len(paths)} image(s), {params[0]['seconds']:.2f} s each, {active} LoRA(s) on"
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

    def refreshed(values: dict):
        choices = _lora_choices()
        known = {path for _, path in choices}
        updates = [gr.Dropdown(choices=choices, value=values[s.lora] if values[s.lora] in known else "") for s in slots]
        svdiffs = _svdiff_choices()
        kept = values[svdiff] if values[svdiff] in {path for _, path in svdiffs} else ""
        return *updates, gr.Dropdown(choices=_embedding_choices()), gr.Dropdown(choices=svdiffs, value=kept)

    def upload_lora(file, values: dict):
        if not file:
            return *[gr.Dropdown() for _ in slots], None
        try:
            path = str(library.import_upload(file, "loras"))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from error
        choices = _lora_choices()
        free = next((i for i, s in enumerate(slots) if not values[s.lora]), None)
        updates = [
            gr.Dropdown(choices=choices, value=path if i == free else values[s.lora]) for i, s in enumerate(slots)
        ]
        return *updates, None

    def upload_embedding(file, chosen: list):
        if not file:
            return gr.Dropdown(), None
        try:
            path = str(library.import_upload(file, "embeddings"))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from error
        return gr.Dropdown(choices=_embedding_choices(), value=[*(chosen or []), path]), None

    def upload_svdiff(file):
        """An SVDiff export from elsewhere: checked to be one (a LoRA file is refused, naming why), kept, selected."""
        if not file:
            return gr.Dropdown(), None
        from studio.train.methods.svdiff.spectral import read_shifts

        try:
            read_shifts(Path(file))
            path = str(library.import_upload(file, "svdiff"))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from error
        return gr.Dropdown(choices=_svdiff_choices(), value=path), None

    def save_this_mix(values: dict):
        """The switched-on LoRAs at their weights -> one new file in data/loras/, listed and offered for download."""
        from studio.generate.mix import describe_mix, save_mix
        from studio.train.export import kohya_consumer_warnings

        try:
            settings = GenerationSettings.from_dict(settings_dict(values) | {"fast": False})
            specs = [spec for spec in settings.lora_specs if spec.enabled]
            if not specs:
                raise ValueError("switch on at least one LoRA to save a mix")
            path = save_mix(engine, settings.model, specs, library.new_file("loras", values[mix_name] or "mix"))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from error
        note = f"Saved the mix ({describe_mix(specs)}) as `loras/{path.name}`: choose it as one LoRA at weight 1."
        note += "".join(f"\n\n{warning}" for warning in kohya_consumer_warnings(path))
        choices = _lora_choices()
        return *[gr.Dropdown(choices=choices) for _ in slots], note, gr.File(value=str(path), visible=True)

    def restore_settings(file):
        """A PNG of ours -> the form; adapters outside the data folder are left out (and said so)."""
        params = read_params(file) if file else None
        if not params:
            raise gr.Error("that image carries no studio settings (only PNGs made here do)")
        skipped, loras = [], []
        for lora in params.get("loras", [])[:SLOTS]:
            try:
                loras.append(lora | {"path": str(library.inside_data(lora["path"]))})
            except ValueError:
                skipped.append(lora["path"])
        embeds = []
        for embedding in params.get("embeddings", []):
            try:
                embeds.append(str(library.inside_data(embedding["path"])))
            except ValueError:
                skipped.append(embedding["path"])
        svdiffs = []
        for item in params.get("svdiffs", [])[:1]:
            try:
                svdiffs.append(item | {"path": str(library.inside_data(item["path"]))})
            except ValueError:
                skipped.append(item["path"])
        shift = svdiffs[0] if svdiffs else {"path": "", "weight": 1.0}
        choices = _lora_choices()
        slot_updates = []
        for index, _ in enumerate(slots):
            lora = loras[index] if index < len(loras) else {"path": "", "weight": 1.0, "enabled": True}
            slot_updates += [
                gr.Dropdown(choices=_with_choice(choices, lora["path"]), value=lora["path"]),
                lora["weight"],
                lora["enabled"],
            ]
        block_values = []
        for index, _ in enumerate(slots):
            blocks = (loras[index].get("blocks") if index < len(loras) else None) or {}
            block_values += [float(blocks.get(name, 1.0)) for name in BLOCKS]
        note = f"Restored the settings of seed {params.get('seed')}."
        if skipped:
            note += f" Left out (outside the data folder): {', '.join(skipped)}."
        return (
            params.get("prompt", ""),
            params.get("negative_prompt", ""),
            params.get("sampler", "default"),
            params.get("steps", defaults.steps),
            params.get("guidance", defaults.guidance),
            params.get("seed", 0),
            params.get("model", "pocket"),
            bool(params.get("fuse", False)),
            bool(params.get("fast", False)),
            params.get("quantize", "none"),
            gr.Dropdown(choices=_embedding_choices(), value=embeds),
            *slot_updates,
            gr.Dropdown(choices=_with_choice(_svdiff_choices(), shift["path"]), value=shift["path"]),
            shift["weight"],
            *block_values,
            note,
            None,
        )

    outputs = [gallery, status, details, state]
    button.click(run, inputs=inputs, outputs=outputs, concurrency_id="engine", api_name="playground_generate")
    prompt.submit(
        run,
        inputs=inputs,
        outputs=outputs,
        concurrency_id="engine",
        api_name="playground_generate_submit",
        api_visibility="private",
    )
    gallery.select(select, inputs=state, outputs=details, api_name="playground_select", api_visibility="private")
    slot_dropdowns = [s.lora for s in slots]
    refresh.click(
        refreshed,
        inputs={*slot_dropdowns, svdiff},
        outputs=[*slot_dropdowns, embeddings, svdiff],
        api_name="playground_refresh",
    )
    lora_upload.upload(
        lambda values: upload_lora(values[lora_upload], values),
        inputs={lora_upload, *slot_dropdowns},
        outputs=[*slot_dropdowns, lora_upload],
        api_name="playground_upload_lora",
    )
    embedding_upload.upload(
        upload_embedding,
        inputs=[embedding_upload, embeddings],
        outputs=[embeddings, embedding_upload],
        api_name="playground_upload_embedding",
    )
    svdiff_upload.upload(
        upload_svdiff,
        inputs=svdiff_upload,
        outputs=[svdiff, svdiff_upload],
        api_name="playground_upload_svdiff",
    )
    restore.upload(
        restore_settings,
        inputs=restore,
        outputs=[
            prompt,
            negative,
            sampler,
            steps,
            guidance,
            seed,
            model,
            fuse,
            fast,
            quantize,
            embeddings,
            *slot_inputs,
            svdiff,
            svdiff_weight,
            *block_inputs,
            status,
            restore,
        ],
        api_name="playground_restore",
    )
    save_mix_button.click(
        save_this_mix,
        inputs=inputs | {mix_name},
        outputs=[*slot_dropdowns, mix_message, mix_file],
        concurrency_id="engine",
        api_name="playground_save_mix",
    )
    # .input, not .change: restoring a PNG sets the box too, and must keep the PNG's own steps and guidance
    fast.input(
        fast_toggled,
        inputs=fast,
        outputs=[sampler, steps, guidance],
        api_name="playground_fast",
        api_visibility="private",
    )
    return Playground(send, inputs, settings_dict)
