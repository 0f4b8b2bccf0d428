"""The studio's Blocks app: a header and one tab per stage of the loop."""

from __future__ import annotations

import gradio as gr

from studio.generate.engine import GenerationEngine
from studio.ui import compare_tab, dataset_tab, generate_tab, playground_tab, runs_tab, train_tab, visitors
from studio.workspace import Workspaces

CSS = """
#studio-header h1 { margin-bottom: 0; }
#studio-header p { margin-top: 4px; opacity: 0.8; }
/* small models make small images: show their pixels crisply when enlarged */
#gen-gallery img, #pg-gallery img, #cmp-slider img, #cmp-grid img, #train-samples img, #runs-samples img, #runs-finals img, #ds-gallery img { image-rendering: pixelated; }
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
        # first on every page load: who the visitor is (public mode); the tabs load their data after it
        visitor = visitors.visitor_state()
        loaded = app.load(visitors.visit_handler(workspaces), visitor, visitor, api_visibility="private")
        with gr.Tabs():
            with gr.Tab("Dataset", id="dataset") as tab:
                dataset_tab.build(loaded, tab, workspaces)
            with gr.Tab("Train", id="train") as tab:
                train_tab.build(loaded, tab, workspaces)
            with gr.Tab("Runs", id="runs") as tab:
                runs_tab.build(loaded, tab, workspaces)
            with gr.Tab("Generate", id="generate"):
                allowed = workspaces.limits.base_models if workspaces.public else None
                generate_tab.build(engine, allowed_models=allowed)
            if not workspaces.public:  # they list every run and adapter in the data folder: not yet one visitor's own
                with gr.Tab("Playground", id="playground"):
                    playground = playground_tab.build(engine)
                with gr.Tab("Compare", id="compare"):
                    compare_tab.build(engine, playground)
    return app


def launch(host: str = "127.0.0.1", port: int = 7860, public: bool = False) -> None:
    """Start the studio; `public`: a workspace per visitor, with caps, and idle workspaces cleaned up (a Space)."""
    from studio.paths import DATA_DIR
    from studio.runtime import apply_thread_budget, prepare_environment, thread_budget

    prepare_environment()
    # the UI shares the cores with a training process when one runs: it keeps one for previews
    apply_thread_budget(thread_budget("ui", sharing=True))
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    workspaces = visitors.public_workspaces(DATA_DIR) if public else Workspaces(DATA_DIR)
    if public:
        workspaces.clean_periodically()  # now, then every hour
    else:
        workspaces.get().queue.resume_after_restart()  # a queue that was processing when the app went down goes on
    app = build_app(workspaces=workspaces)
    app.queue(default_concurrency_limit=1)
    app.launch(
        server_name=host,
        server_port=port,
        css=CSS,
        theme=theme(),
        footer_links=["api"],
        allowed_paths=visitors.served_paths(DATA_DIR, public),  # the data folder at most, nothing else
        max_file_size=workspaces.limits.max_workspace_bytes if public else None,
    )


def theme() -> gr.themes.Base:
    # System fonts only: the default theme pulls web fonts from the internet,
    # which an offline workstation or a locked-down Space cannot reach.
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
