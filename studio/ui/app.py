"""The studio's Blocks app: a header and one tab per stage of the loop."""

from __future__ import annotations

import gradio as gr

from studio.generate.engine import GenerationEngine
from studio.ui import compare_tab, generate_tab, playground_tab

CSS = """
#studio-header h1 { margin-bottom: 0; }
#studio-header p { margin-top: 4px; opacity: 0.8; }
/* small models make small images: show their pixels crisply when enlarged */
#gen-gallery img { image-rendering: pixelated; }
"""


def build_app(engine: GenerationEngine | None = None) -> gr.Blocks:
    engine = engine or GenerationEngine()
    with gr.Blocks(title="Diffusion Studio") as app:
        gr.Markdown(
            "# Diffusion Studio\nTeach a text-to-image model your own images, then use it. "
            "Running on the built-in **pocket model** (64×64 shapes world) unless you choose another.",
            elem_id="studio-header",
        )
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                generate_tab.build(engine)
            with gr.Tab("Playground", id="playground"):
                playground = playground_tab.build(engine)
            with gr.Tab("Compare", id="compare"):
                compare_tab.build(engine, playground)
    return app


def launch(host: str = "127.0.0.1", port: int = 7860) -> None:
    from studio.runtime import apply_thread_budget, prepare_environment, thread_budget

    prepare_environment()
    apply_thread_budget(thread_budget("ui"))
    app = build_app()
    app.queue(default_concurrency_limit=1)
    app.launch(server_name=host, server_port=port, css=CSS, theme=theme(), footer_links=["api"])


def theme() -> gr.themes.Base:
    # System fonts only: the default theme pulls web fonts from the internet,
    # which an offline workstation or a locked-down Space cannot reach.
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
