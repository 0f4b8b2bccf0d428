"""Dataset tab: drop images or a zip, see every file accepted or refused with its reason, caption them (pocket
captioner by default) with a progress bar, edit captions in a table (bulk find/replace, trigger word), save, and
prepare a cropped copy for training. Everything is saved in the dataset folder, so reopening the app shows it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from studio.data import captions
from studio.data.caption_text import TokenCounter
from studio.data.captioners import load_captioner
from studio.data.dataset import Dataset, list_datasets
from studio.data.examples import EXAMPLES, create_example
from studio.data.importer import ImportOptions, import_dataset
from studio.data.prepare import MODES, PrepareSettings, prepare_dataset
from studio.data.validate import ImageRules
from studio.paths import POCKET_MODEL_DIR
from studio.ui import remembered
from studio.ui.errors import friendly
from studio.ui.tab import Answer, BuiltTab
from studio.workspace import Workspace, Workspaces

STATUS_COLUMNS = ["file", "status", "detail"]
CAPTION_COLUMNS = ["file", "caption"]
DEFAULT_RESOLUTION = 64  # the pocket model's
CAPTIONER_HELP = (
    "pocket: offline, for shapes-world images; template: 'a photo of <trigger>'; blip / florence2: download."
)


# ------------------------------------------------------------------ handlers (no components: tested directly)


def token_counter():
    """Caption lengths are counted with the pocket model's CLIP tokenizer (None if it is not shipped)."""
    folder = POCKET_MODEL_DIR / "tokenizer"
    return TokenCounter.from_folder(folder) if folder.is_dir() else None


def import_files(
    ws: Workspace, name: str, files: list[str], resolution: int = DEFAULT_RESOLUTION, trigger: str = ""
) -> tuple[Dataset, str]:
    """Import an upload into dataset `name` (created if new, added to if it exists); returns it and a summary."""
    if not files:
        raise ValueError("drop some images (or a zip of them) first")
    name = (name or "").strip()
    if not name:
        raise ValueError("give the dataset a name")
    ws.check_upload(name, files)
    options = ImportOptions(
        rules=ImageRules(resolution=int(resolution)), trigger=trigger.strip() or None, token_counter=token_counter()
    )
    exists = (ws.dataset_path(name) / "manifest.json").is_file()
    dataset, report = import_dataset(name, files, root=ws.datasets_root, options=options, add=exists)
    return dataset, report.summary()


def open_example(ws: Workspace, key: str) -> tuple[Dataset, str]:
    """Make (or reopen) example dataset `key` in this workspace; returns it and what to do with it."""
    dataset = create_example(key, ws.datasets_root, check_upload=ws.check_upload)
    return dataset, f"**{dataset.name}**: {EXAMPLES[key].about}"


def file_rows(dataset: Dataset) -> list[list[str]]:
    """Every file with its status: accepted, warning (kept, with why) or rejected (with why)."""
    rows = []
    for item in dataset.items:
        if item.warnings:
            rows.append([item.file, "warning", "; ".join(w.message for w in item.warnings)])
        else:
            rows.append([item.file, "accepted", ""])
    rows += [[r.source, "rejected", r.issue.message] for r in dataset.rejected]
    return rows


def thumbnails(dataset: Dataset, serve: Callable[[Path], str] = str) -> list[tuple[str, str]]:
    """The dataset's images for a gallery; `serve` gives the path the page may show (Workspaces.served_copy)."""
    return [
        (serve(dataset.images_dir / item.file), ("⚠ " if item.warnings else "✓ ") + item.file) for item in dataset.items
    ]


def caption_rows(dataset: Dataset) -> list[list[str]]:
    return [[item.file, item.caption] for item in dataset.items]


def apply_caption_table(dataset: Dataset, rows: list[list]) -> int:
    """Write the table's edited captions into the dataset (in memory); returns how many changed."""
    counter = token_counter()
    known = {item.file: item for item in dataset.items}
    changed = 0
    for row in rows:
        if len(row) < 2 or row[0] not in known:
            continue
        text = str(row[1] or "")
        if text.strip() != known[row[0]].caption:
            captions.edit_caption(dataset, row[0], text, counter)
            changed += 1
    return changed


def auto_caption(ws: Workspace, name: str, captioner: str, overwrite: bool, on_progress=None) -> str:
    dataset = Dataset.load(ws.dataset_path(name))
    ws.check_captioner(captioner or "pocket")
    model = load_captioner(captioner or "pocket", trigger=dataset.trigger or "")
    report = captions.caption_dataset(dataset, model, overwrite, counter=token_counter(), on_progress=on_progress)
    dataset.save()
    return f"{report.summary()} with the {model.name} captioner."


def prepare(ws: Workspace, name: str, mode: str, resolution: int) -> tuple[str, str]:
    """Crop/resize a copy; returns the message and the copy's Train-tab choice."""
    prepared = prepare_dataset(
        Dataset.load(ws.dataset_path(name)), PrepareSettings(resolution=int(resolution), mode=mode)
    )
    label = f"{name} (prepared {prepared.folder.name})"
    return f"Prepared {len(prepared.items)} images as **{label}**: the Train tab offers it.", (
        f"{name}/prepared/{prepared.folder.name}"
    )


# ------------------------------------------------------------------ layout and wiring


@dataclass
class DatasetTab(BuiltTab):
    """What the page keeps of the tab: besides memory and events, for the Train tab to offer, the picker of the
    dataset open here and the Train-tab choice of the copy last prepared."""

    picked: gr.Dropdown
    prepared: gr.State


@dataclass
class _Controls:
    """The tab's components by name: the left column (`_source_column`) and the right one (`_table_column`)."""

    picked: gr.Dropdown
    name: gr.Textbox
    upload: gr.File
    trigger: gr.Textbox
    resolution: gr.Number
    add: gr.Button
    examples: dict  # example key -> its button
    message: gr.Markdown
    captioner: gr.Dropdown
    overwrite: gr.Checkbox
    caption: gr.Button
    caption_message: gr.Markdown
    crop: gr.Dropdown
    prepare: gr.Button
    prepare_message: gr.Markdown
    gallery: gr.Gallery
    status: gr.Dataframe
    table: gr.Dataframe
    find: gr.Textbox
    replace: gr.Textbox
    replace_all: gr.Button
    apply_trigger: gr.Button
    save: gr.Button
    table_message: gr.Markdown

    @property
    def view(self) -> list:
        """What shows the dataset open: `_Handlers.view` fills them by name."""
        return [self.gallery, self.status, self.table, self.picked]


def build(loaded: gr.events.Dependency, workspaces: Workspaces) -> DatasetTab:
    """`loaded`: the page's load event that knows the visitor; the tab loads its data after it."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=380):
            left = _source_column()
        with gr.Column(scale=3, min_width=520):
            right = _table_column()
    ui = _Controls(**left, **right)
    handlers = _Handlers(ui, workspaces)
    prepared = gr.State(None)
    _wire_sources(ui, handlers, prepared)
    _wire_table(ui, handlers)
    loaded.then(handlers.on_show, None, ui.picked, api_visibility="private")
    return DatasetTab(
        picked=ui.picked,
        prepared=prepared,
        memory=remembered.dataset_memory(ui.picked, workspaces),
        on_select=Answer(handlers.on_show, None, ui.picked),
    )


def _source_column() -> dict:
    """Where the images come from (a name, an upload, an example), then captioning and preparing them."""
    with gr.Row():
        # custom values: API callers name a dataset the page has not listed (the name is checked on use)
        picked = gr.Dropdown([], label="Open a saved dataset", elem_id="ds-pick", scale=3, allow_custom_value=True)
        name = gr.Textbox(label="…or name a new one", placeholder="my-shapes", elem_id="ds-name", scale=3)
    upload = gr.File(
        label="Drop images, caption .txt files or a .zip", file_count="multiple", elem_id="ds-upload",
        file_types=["image", ".zip", ".txt", ".caption", ".jsonl"], height=140,
    )  # fmt: skip
    with gr.Row():
        trigger = gr.Textbox(
            label="Trigger word", placeholder="e.g. zq", elem_id="ds-trigger",
            info="A rare word that will mean your concept; put before every caption.",
        )  # fmt: skip
        resolution = gr.Number(
            DEFAULT_RESOLUTION, precision=0, label="Resolution", elem_id="ds-resolution",
            info="Training size in pixels (pocket: 64, SD 1.5: 512).",
        )  # fmt: skip
    add = gr.Button("Add to dataset", variant="primary", elem_id="ds-import")
    with gr.Row(equal_height=True):
        gr.Markdown("No images to hand? Start from an example:", elem_id="ds-examples-label")
        examples = {key: gr.Button(example.title, size="sm", elem_id=f"ds-example-{key}")
                    for key, example in EXAMPLES.items()}  # fmt: skip
    # each answer sits under the buttons that caused it, not at the bottom of the column
    message = gr.Markdown(elem_id="ds-message")
    return dict(picked=picked, name=name, upload=upload, trigger=trigger, resolution=resolution, add=add,
                examples=examples, message=message) | _caption_and_prepare_rows()  # fmt: skip


def _caption_and_prepare_rows() -> dict:
    with gr.Row():
        captioner = gr.Dropdown(
            ["pocket", "template", "blip", "florence2"], value="pocket", label="Captioner",
            info=CAPTIONER_HELP, elem_id="ds-captioner",
        )  # fmt: skip
        overwrite = gr.Checkbox(label="Replace existing captions", elem_id="ds-overwrite")
    caption = gr.Button("Auto-caption", elem_id="ds-caption")
    caption_message = gr.Markdown(elem_id="ds-caption-message")
    with gr.Row():
        crop = gr.Dropdown(list(MODES), value="center", label="Crop mode", elem_id="ds-crop",
                           info=PrepareSettings.__dataclass_fields__["mode"].metadata["help"])  # fmt: skip
        prepare_button = gr.Button("Prepare for training", elem_id="ds-prepare")
    prepare_message = gr.Markdown(elem_id="ds-prepare-message")
    return dict(captioner=captioner, overwrite=overwrite, caption=caption, caption_message=caption_message,
                crop=crop, prepare=prepare_button, prepare_message=prepare_message)  # fmt: skip


def _table_column() -> dict:
    """The images, every file's status and the editable captions with their bulk edits."""
    gallery = gr.Gallery(
        label="Images", columns=6, height=260, object_fit="contain", allow_preview=True, elem_id="ds-gallery"
    )
    status = gr.Dataframe(
        headers=STATUS_COLUMNS, interactive=False, wrap=True, max_height=200, label="Files",
        elem_id="ds-status", type="array",
    )  # fmt: skip
    table = gr.Dataframe(
        headers=CAPTION_COLUMNS, interactive=True, wrap=True, max_height=320, label="Captions (editable)",
        static_columns=[0], type="array", elem_id="ds-captions", column_count=2,
    )  # fmt: skip
    with gr.Row():
        find = gr.Textbox(label="Find", elem_id="ds-find")
        replace = gr.Textbox(label="Replace with", elem_id="ds-replace")
        replace_all = gr.Button("Replace in all", scale=0, elem_id="ds-replace-all")
    with gr.Row():
        apply_trigger = gr.Button("Put the trigger word in every caption", elem_id="ds-apply-trigger")
        save = gr.Button("Save captions", variant="primary", elem_id="ds-save")
    table_message = gr.Markdown(elem_id="ds-table-message")
    return dict(gallery=gallery, status=status, table=table, find=find, replace=replace, replace_all=replace_all,
                apply_trigger=apply_trigger, save=save, table_message=table_message)  # fmt: skip


class _Handlers:
    """The tab's event handlers; each returns its updates as a dict by component."""

    def __init__(self, ui: _Controls, workspaces: Workspaces) -> None:
        self.ui, self.workspaces = ui, workspaces

    def view(self, dataset: Dataset | None) -> dict:
        ui, choices = self.ui, list_datasets(self.workspaces.get().datasets_root)
        if dataset is None:
            return {ui.gallery: [], ui.status: [], ui.table: [], ui.picked: gr.Dropdown(choices=choices)}
        return {
            ui.gallery: thumbnails(dataset, self.workspaces.served_copy),
            ui.status: file_rows(dataset),
            ui.table: caption_rows(dataset),
            ui.picked: gr.Dropdown(choices=choices, value=dataset.name),
        }

    def current(self, chosen: str | None) -> Dataset:
        if not chosen:
            raise ValueError("open a dataset or add images to a new one first")
        return Dataset.load(self.workspaces.get().dataset_path(chosen))

    @friendly
    def on_open(self, chosen: str | None) -> dict:
        if not chosen:
            return {component: gr.skip() for component in [*self.ui.view, self.ui.trigger]}
        dataset = self.current(chosen)
        return self.view(dataset) | {self.ui.trigger: dataset.trigger or ""}

    @friendly
    def on_import(self, values: dict, progress=gr.Progress()) -> dict:
        ui = self.ui
        progress(0, desc="checking images")
        dataset, summary = import_files(
            self.workspaces.get(), values[ui.name] or values[ui.picked], values[ui.upload] or [],
            values[ui.resolution], values[ui.trigger],
        )  # fmt: skip
        return self.view(dataset) | {ui.message: f"**{dataset.name}**: {summary}.", ui.upload: None}

    def on_example(self, key: str) -> Callable[[], dict]:
        @friendly
        def handler() -> dict:
            dataset, about = open_example(self.workspaces.get(), key)
            return self.view(dataset) | {self.ui.trigger: dataset.trigger or "", self.ui.message: about}

        return handler

    @friendly
    def on_caption(self, dataset: str, captioner: str = "pocket", overwrite: bool = False, progress=gr.Progress()):
        progress(0, desc="loading the captioner")
        return auto_caption(
            self.workspaces.get(), dataset, captioner, overwrite,
            lambda done, total: progress((done, total), unit="images"),
        )  # fmt: skip

    def edited(self, values: dict, edit: Callable[[Dataset], str] | None) -> dict:
        """The table's edits applied, then `edit` (which says what it did), saved and shown."""
        dataset = self.current(values[self.ui.picked])
        changed = apply_caption_table(dataset, values[self.ui.table] or [])
        message = edit(dataset) if edit else f"Saved: {changed} caption(s) changed."
        dataset.save()
        return self.view(dataset) | {self.ui.table_message: message}

    @friendly
    def on_replace(self, values: dict) -> dict:
        def replace(dataset: Dataset) -> str:
            find, text = values[self.ui.find], values[self.ui.replace]
            return f"Replaced in {captions.find_replace(dataset, find, text, counter=token_counter())} caption(s) and saved."

        return self.edited(values, replace)

    @friendly
    def on_trigger(self, values: dict) -> dict:
        def put_trigger(dataset: Dataset) -> str:
            word = (values[self.ui.trigger] or "").strip()
            if not word:
                raise ValueError("type a trigger word first")
            changed = captions.apply_trigger(dataset, word, token_counter())
            return f"Trigger **{dataset.trigger}** added to {changed} caption(s) and saved."

        return self.edited(values, put_trigger)

    @friendly
    def on_save(self, values: dict) -> dict:
        return self.edited(values, None)

    @friendly
    def on_prepare(self, chosen, mode, size):
        return prepare(self.workspaces.get(), self.current(chosen).name, mode, size)

    def on_show(self):
        return gr.Dropdown(choices=list_datasets(self.workspaces.get().datasets_root))


def _wire_sources(ui: _Controls, handlers: _Handlers, prepared: gr.State) -> None:
    """Opening, importing, the examples, captioning and preparing."""
    shown = [*ui.view, ui.trigger]
    ui.picked.change(handlers.on_open, ui.picked, shown, api_visibility="private")
    ui.add.click(
        handlers.on_import, {ui.upload, ui.name, ui.picked, ui.trigger, ui.resolution}, [*ui.view, ui.message, ui.upload],
        api_visibility="private",
    )  # fmt: skip
    for key, button in ui.examples.items():
        button.click(handlers.on_example(key), None, [*shown, ui.message], api_visibility="private")
    ui.caption.click(handlers.on_caption, [ui.picked, ui.captioner, ui.overwrite], ui.caption_message,
                     api_name="caption").then(handlers.on_open, ui.picked, shown, api_visibility="private")  # fmt: skip
    ui.prepare.click(handlers.on_prepare, [ui.picked, ui.crop, ui.resolution], [ui.prepare_message, prepared],
                     api_visibility="private")  # fmt: skip
    # another dataset opened by hand: the answers about the last one are stale (not .change: an import or an
    # example sets the picker and its own answer at once)
    answers = [ui.message, ui.caption_message, ui.prepare_message, ui.table_message]
    ui.picked.input(lambda: ("", "", "", ""), None, answers, api_visibility="private")


def _wire_table(ui: _Controls, handlers: _Handlers) -> None:
    """The caption table's bulk edits and its Save."""
    outputs = [*ui.view, ui.table_message]
    table = {ui.picked, ui.table}
    ui.replace_all.click(handlers.on_replace, table | {ui.find, ui.replace}, outputs, api_visibility="private")
    ui.apply_trigger.click(handlers.on_trigger, table | {ui.trigger}, outputs, api_visibility="private")
    ui.save.click(handlers.on_save, table, outputs, api_visibility="private")
