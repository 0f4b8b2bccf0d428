"""The studio's Blocks app: a header and one tab per stage of the loop."""

from __future__ import annotations

import gradio as gr

from studio.generate import library
from studio.generate.engine import GenerationEngine
from studio.paths import data_dir
from studio.runtime import apply_thread_budget, prepare_environment, thread_budget
from studio.serve import rest
from studio.serve.admission import Admission, ServeLimits
from studio.ui import (
    api_endpoints,
    compare_tab,
    dataset_tab,
    generate_tab,
    playground_tab,
    remembered,
    runs_tab,
    train_tab,
    visitors,
)
from studio.ui.tab import Answer, BuiltTab
from studio.workspace import Workspaces

LIST_POLL_SECONDS = 3.0  # how soon a run's new checkpoint or export shows in the Playground and Compare lists

CSS = """
#studio-header h1 { margin-bottom: 0; }
#studio-header p { margin-top: 4px; opacity: 0.8; }
/* small models make small images: show their pixels crisply when enlarged */
#gen-gallery img, #pg-gallery img, #cmp-slider img, #cmp-grid img, #train-samples img, #runs-samples img, #runs-finals img, #ds-gallery img { image-rendering: pixelated; }
/* Compare: the grid and its status stay in view while the long form beside them is scrolled */
#cmp-results { position: sticky; top: 8px; align-self: flex-start; }
/* Gradio's container hides its overflow, which makes it a scroll container and stops anything sticking in it;
   clip cuts off the same overflow without that */
.gradio-container { overflow: clip !important; }
/* thumbnails keep their size as a gallery grows (Gradio stretches a few images over the whole width) */
#train-samples .grid-container, #runs-samples .grid-container, #runs-finals .grid-container, #ds-gallery .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(100px, 128px)) !important;
}
/* narrow windows (800 px): a slider's label and number box wrap instead of a scrollbar of the slider's own */
.block:has(input[type=range]) { overflow: visible !important; }
.block:has(input[type=range]) .head { flex-wrap: wrap; gap: 2px 8px; }
.slider_input_container { max-width: 100%; }
.slider_input_container input[type=range] { min-width: 0; flex: 1 1 auto; }
/* a dropdown's text stops before its arrow */
.secondary-wrap input[role=combobox] { padding-right: 22px !important; text-overflow: ellipsis; }
/* a run's downloads: Gradio puts an × beside each of several files even where nothing can be removed, and it reads
   as "delete this file" */
#runs-files .label-clear-button { display: none; }
/* table headers break between words, never inside one ("subje ct") */
table th, table th * { word-break: normal !important; overflow-wrap: normal !important; hyphens: none; }
"""


# what a screen reader hears when an event ends: Gradio 6 announces the keys themselves ("common.complete"), which
# its own translations lack; ours fill them in
ANNOUNCEMENTS = gr.I18n(en={"common.complete": "Done", "common.error": "Error"})


def build_app(
    engine: GenerationEngine | None = None, workspaces: Workspaces | None = None, admission: Admission | None = None
) -> gr.Blocks:
    """The page and its `gradio_client` API; `admission` bounds API generation (shared with the REST API)."""
    engine = engine or GenerationEngine()
    workspaces = workspaces or Workspaces(data_dir())
    admission = admission or Admission()
    with gr.Blocks(title="Diffusion Studio") as app:
        gr.Markdown(
            "# Diffusion Studio\nTeach a text-to-image model your own images, then use it. "
            "Running on the built-in **pocket model** (64×64 shapes world) unless you choose another.",
            elem_id="studio-header",
        )
        # first on every page load: who the visitor is (public mode); the tabs load their data after it
        visitor = visitors.visitor_state()
        loaded = app.load(visitors.visit_handler(workspaces), visitor, visitor, api_visibility="private")
        tab_bar, tabs, built = build_tabs(loaded, engine, workspaces)
        folder = workspaces.root.parent if workspaces.public else workspaces.shared.data_dir
        memories = [shown.memory for shown in built.values() if shown.memory is not None]
        remembered.remember(loaded, memories, remembered.secret(folder), tab_bar, tabs)
        for tab_id, shown in built.items():
            if shown.on_select is not None:
                shown.on_select.attach(tabs[tab_id].select)
        _watch_runs([shown.on_runs_changed for shown in built.values() if shown.on_runs_changed is not None])
        api_endpoints.register(engine, workspaces, admission)
    return app


def build_tabs(
    loaded: gr.events.Dependency, engine: GenerationEngine, workspaces: Workspaces
) -> tuple[gr.Tabs, dict[str, gr.Tab], dict[str, BuiltTab]]:
    """The tab bar, its tabs by id, and what each built tab shows the page (`BuiltTab`). A tab that another one
    wires to is handed over by name: the Dataset tab's picker to Train, the Playground to Compare."""
    tabs: dict[str, gr.Tab] = {}
    built: dict[str, BuiltTab] = {}
    with gr.Tabs() as tab_bar:
        with gr.Tab("Dataset", id="dataset") as tabs["dataset"]:
            dataset = built["dataset"] = dataset_tab.build(loaded, workspaces)
        with gr.Tab("Train", id="train") as tabs["train"]:
            built["train"] = train_tab.build(loaded, workspaces, dataset.picked, dataset.prepared)
        with gr.Tab("Runs", id="runs") as tabs["runs"]:
            built["runs"] = runs_tab.build(loaded, workspaces)
        with gr.Tab("Generate", id="generate") as tabs["generate"]:
            built["generate"] = generate_tab.build(engine, workspaces)
        if not workspaces.public:  # they list every run and adapter in the data folder: not yet one visitor's own
            with gr.Tab("Playground", id="playground") as tabs["playground"]:
                playground = built["playground"] = playground_tab.build(engine)
            with gr.Tab("Compare", id="compare") as tabs["compare"]:
                built["compare"] = compare_tab.build(engine, playground)
    return tab_bar, tabs, built


def _watch_runs(answers: list[Answer]) -> None:
    """Lists of runs and adapters are read again when the data folder's runs or uploads change (a run saved a
    checkpoint or finished): no "Refresh" click needed. Private studios only: no visitor to wait for."""
    if not answers:
        return
    listing, changes = gr.State(None), gr.State(0)  # what the lists depend on; how often it changed
    watch = gr.Timer(LIST_POLL_SECONDS)
    watch.tick(_watched, [listing, changes], [listing, changes], show_progress="hidden", api_visibility="private")
    for answer in answers:
        answer.attach(changes.change)


def _watched(seen, changes: int):
    """The data folder's listing signature, and a count that grows when it changes: the first look at a page load
    is not a change (the lists were read when the tab was built or opened), so it reads no list again."""
    now = library.listing_signature()
    if seen is None or now == seen:
        return now, gr.skip()
    return now, changes + 1


def launch(host: str = "127.0.0.1", port: int = 7860, public: bool = False, limits: ServeLimits | None = None) -> None:
    """Start the studio with its APIs; `public`: a workspace per visitor, with caps, and idle workspaces cleaned up
    (a Space); `limits`: how many generation requests the APIs run and hold at once."""
    prepare_environment()
    # the UI shares the cores with a training process when one runs: it keeps one for previews and API generation
    apply_thread_budget(thread_budget("ui", sharing=True))
    data = data_dir()
    data.mkdir(parents=True, exist_ok=True)
    workspaces = visitors.public_workspaces(data) if public else Workspaces(data)
    if public:
        workspaces.clean_periodically()  # now, then every hour
    else:
        workspaces.get().queue.resume_after_restart()  # a queue that was processing when the app went down goes on
    engine, admission = GenerationEngine(), Admission(limits)
    app = build_app(engine, workspaces, admission)
    app.queue(default_concurrency_limit=1)
    app.launch(
        server_name=host,
        server_port=port,
        css=CSS,
        theme=theme(),
        footer_links=["api"],
        i18n=ANNOUNCEMENTS,
        allowed_paths=visitors.served_paths(data, public),  # the data folder at most, nothing else
        max_file_size=workspaces.limits.max_workspace_bytes if public else None,
        app_kwargs=rest.app_kwargs(engine, workspaces, admission),  # /api/v1 on the same server
    )


def theme() -> gr.themes.Base:
    # System fonts only: the default theme pulls web fonts from the internet,
    # which an offline workstation or a locked-down Space cannot reach.
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
