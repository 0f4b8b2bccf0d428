"""Generate tab: prompt in, images out, each PNG carrying the settings that made it."""

from __future__ import annotations

import gradio as gr

from studio.generate.engine import MAX_COUNT, GenerationEngine, GenerationSettings
from studio.generate.samplers import sampler_labels
from studio.paths import data_dir
from studio.serve.service import ApiAccess, generation_settings
from studio.ui.errors import friendly, refusal
from studio.ui.gallery import results_gallery, saved_for_page
from studio.ui.tab import BuiltTab
from studio.workspace import Workspaces

EXAMPLES = [
    "a yellow triangle on a black background",
    "a red circle on a white background",
    "a blue diamond on a gray background",
    "a green square on a brown background",
]


def _help(name: str) -> str:
    return GenerationSettings.__dataclass_fields__[name].metadata["help"]


def form_settings(access: ApiAccess, values: dict) -> GenerationSettings:
    """The form's settings, checked as the APIs check them (a public studio: its models, its prompt size)."""
    return generation_settings(access, **values)


def build(engine: GenerationEngine, workspaces: Workspaces | None = None) -> BuiltTab:
    """The Generate tab. Images go to the outputs/ folder of the visitor's workspace (the data folder's in a
    private studio); a public studio fixes the base models a visitor may load and caps the prompt. It keeps nothing
    across a reload and answers no page event: an empty `BuiltTab`."""
    workspaces = workspaces or Workspaces(data_dir())
    access = ApiAccess.of(workspaces)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            fields, button = _form(access.allowed_models is None)
        with gr.Column(scale=3):
            gallery = results_gallery("gen-gallery", height=420)
            status = gr.Markdown(elem_id="gen-status")
            details = gr.JSON(label="Settings of the selected image", elem_id="gen-details")
    state = gr.State([])  # parameters of the images in the gallery, in order

    @friendly  # a bad form or a full workspace: its sentence, no traceback in the log
    def run(values: dict, progress=gr.Progress()):
        named = {name: values[component] for name, component in fields.items()}
        named |= {"steps": int(named["steps"]), "guidance": float(named["guidance"]), "count": int(named["count"]),
                  "seed": int(named["seed"])}  # fmt: skip
        settings = form_settings(access, named)
        workspaces.get().check_room()  # the images are stored in the visitor's workspace
        progress(0, desc="loading model")
        try:
            results = engine.generate(settings, on_step=lambda done, total: progress(done / total, desc="denoising"))
        except (ValueError, OSError) as error:  # a model that cannot be loaded is the person's to fix too
            raise refusal(str(error)) from error
        paths = saved_for_page(workspaces, results)
        params = [r.params for r in results]
        seconds = sum(p["seconds"] for p in params)
        where = "your workspace" if workspaces.public else "`data/outputs`"
        note = f"{len(paths)} image(s) in {seconds:.1f} s, seeds {params[0]['seed']}–{params[-1]['seed']}. Saved to {where}."
        return paths, note, params[0], params

    def select(params: list, event: gr.SelectData):
        return params[event.index] if 0 <= event.index < len(params) else None

    # the page's event; programs call the `generate` endpoint of api_endpoints, which takes every setting by name
    generated = [gallery, status, details, state]
    for trigger in (button.click, fields["prompt"].submit):
        trigger(run, inputs=set(fields.values()), outputs=generated, concurrency_limit=1, api_visibility="private")
    gallery.select(select, inputs=state, outputs=details, api_visibility="private")
    return BuiltTab()


def _form(model_editable: bool) -> tuple[dict, gr.Button]:
    """The settings by `GenerationSettings` name, and Generate."""
    defaults = GenerationSettings(prompt="-")
    prompt = gr.Textbox(label="Prompt", value=EXAMPLES[0], lines=2, info=_help("prompt"), elem_id="gen-prompt")
    negative = gr.Textbox(label="Negative prompt", lines=1, info=_help("negative_prompt"), elem_id="gen-negative")
    with gr.Row():
        sampler = gr.Dropdown(
            label="Sampler",
            choices=[(label, name) for name, label in sampler_labels().items()],
            value="default",
            info="DPM++ 2M is fast and clean; Euler a is more varied.",
            elem_id="gen-sampler",
        )
        steps = gr.Slider(1, 100, value=defaults.steps, step=1, label="Steps", info=_help("steps"))
    with gr.Row():
        guidance = gr.Slider(0, 20, value=defaults.guidance, step=0.5, label="Guidance", info=_help("guidance"))
        count = gr.Slider(1, MAX_COUNT, value=4, step=1, label="Images", info=_help("count"))
    with gr.Row():
        seed = gr.Number(value=0, precision=0, label="Seed", info=_help("seed"), elem_id="gen-seed")
        model = gr.Textbox(
            value="pocket", label="Base model", info=_help("model"), elem_id="gen-model", interactive=model_editable
        )
    button = gr.Button("Generate", variant="primary", elem_id="gen-button")
    gr.Examples(EXAMPLES, inputs=prompt, label="Try")
    fields = dict(prompt=prompt, negative_prompt=negative, sampler=sampler, steps=steps, guidance=guidance,
                  count=count, seed=seed, model=model)  # fmt: skip
    return fields, button
