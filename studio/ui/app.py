"""The studio's Blocks app: a header and one tab per stage of the loop."""

from __future__ import annotations

import gradio as gr

from studio.generate.engine import GenerationEngine
from studio.ui import compare_tab, dataset_tab, generate_tab, playground_tab, runs_tab, train_tab
from studio.workspace import Workspaces

CSS = """
#studio-header h1 { margin-bottom: 0; }
#studio-header p { margin-top: 4px; opacity: 0.8; }
/* small models make small images: show their pixels crisply when enlarged */
#gen-gallery img, #train-samples img, #runs-samples img, #runs-finals img, #ds-gallery img { image-rendering: pixelated; }
/* thumbnails keep their size as a gallery grows (Gradio stretches a few images over the whole width) */
#train-samples .grid-container, #runs-samples .grid-container, #runs-finals .grid-container, #ds-gallery .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(100px, 128px)) !important;
}
"""


def build_app(engine: GenerationEngine | None = None, workspaces: Workspaces | None = None) -> gr.Blocks:
    from studio.paths import DATA_DIR

    engine = engine or GenerationEngine()
    workspaces = workspaces or Workspaces(DATA_DIR)
    with gr.Blocks(title="Diffusion Studio") as app:
        gr.Markdown(
            "# Diffusion Studio\nTeach a text-to-image model your own images, then use it. "
            "Running on the built-in **pocket model** (64×64 shapes world) unless you choose another.",
            elem_id="studio-header",
        )
        with gr.Tabs():
            with gr.Tab("Dataset", id="dataset") as tab:
                dataset_tab.build(app, tab, workspaces)
            with gr.Tab("Train", id="train") as tab:
                train_tab.build(app, tab, workspaces)
            with gr.Tab("Runs", id="runs") as tab:
                runs_tab.build(app, tab, workspaces)
            with gr.Tab("Generate", id="generate"):
                generate_tab.build(engine)
            with gr.Tab("Playground", id="playground"):
                playground = playground_tab.build(engine)
            with gr.Tab("Compare", id="compare"):
                compare_tab.build(engine, playground)
    return app


def launch(host: str = "127.0.0.1", port: int = 7860) -> None:
    from studio.paths import DATA_DIR
    from studio.runtime import apply_thread_budget, prepare_environment, thread_budget

    prepare_environment()
    # the UI shares the cores with a training process when one runs: it keeps one for previews
    apply_thread_budget(thread_budget("ui", sharing=True))
    app = build_app()
    app.queue(default_concurrency_limit=1)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    app.launch(
        server_name=host,
        server_port=port,
        css=CSS,
        theme=theme(),
        footer_links=["api"],
        allowed_paths=[str(DATA_DIR)],  # the studio's data folder, and nothing else of this machine
    )


def theme() -> gr.themes.Base:
    # System fonts only: the default theme pulls web fonts from the internet,
    # which an offline workstation or a locked-down Space cannot reach.
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
