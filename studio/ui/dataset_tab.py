"""Dataset tab: drop images or a zip, see every file accepted or refused with its reason, caption them (pocket
captioner by default) with a progress bar, edit captions in a table (bulk find/replace, trigger word), save, and
prepare a cropped copy for training. Everything is saved in the dataset folder, so reopening the app shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gradio as gr

from studio.data import captions
from studio.data.captioners import load_captioner
from studio.data.dataset import Dataset, list_datasets
from studio.data.examples import EXAMPLES, create_example
from studio.data.importer import ImportOptions, import_dataset
from studio.data.prepare import MODES, PrepareSettings, prepare_dataset
from studio.data.validate import ImageRules
from studio.paths import POCKET_MODEL_DIR
from studio.ui.errors import friendly
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
    from studio.data.caption_text import TokenCounter

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


def build(loaded: gr.events.Dependency, tab: gr.Tab, workspaces: Workspaces) -> tuple[gr.Dropdown, gr.State]:
    """`loaded`: the page's load event that knows the visitor; the tab loads its data after it. Returns, for the
    Train tab to offer, the picker of the dataset open here and the Train-tab choice of the copy last prepared."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=380):
            with gr.Row():
                # custom values: API callers name a dataset the page has not listed (the name is checked on use)
                picked = gr.Dropdown(
                    [], label="Open a saved dataset", elem_id="ds-pick", scale=3, allow_custom_value=True
                )
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
                example_buttons = {
                    key: gr.Button(example.title, size="sm", elem_id=f"ds-example-{key}")
                    for key, example in EXAMPLES.items()
                }
            # each answer sits under the buttons that caused it, not at the bottom of the column
            message = gr.Markdown(elem_id="ds-message")
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
        with gr.Column(scale=3, min_width=520):
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

    view_outputs = [gallery, status, table, picked]

    def view(dataset: Dataset | None):
        choices = list_datasets(workspaces.get().datasets_root)
        if dataset is None:
            return [], [], [], gr.Dropdown(choices=choices)
        return (
            thumbnails(dataset, workspaces.served_copy),
            file_rows(dataset),
            caption_rows(dataset),
            gr.Dropdown(choices=choices, value=dataset.name),
        )

    def current(chosen: str | None) -> Dataset:
        if not chosen:
            raise ValueError("open a dataset or add images to a new one first")
        return Dataset.load(workspaces.get().dataset_path(chosen))

    @friendly
    def on_open(chosen: str | None):
        if not chosen:
            return [gr.skip()] * 4 + [gr.skip()]
        dataset = current(chosen)
        return [*view(dataset), dataset.trigger or ""]

    @friendly
    def on_import(files, new_name, chosen, trigger_word, size, progress=gr.Progress()):
        progress(0, desc="checking images")
        dataset, summary = import_files(workspaces.get(), new_name or chosen, files or [], size, trigger_word)
        return [*view(dataset), f"**{dataset.name}**: {summary}.", None]

    def on_example(key: str):
        @friendly
        def handler():
            dataset, about = open_example(workspaces.get(), key)
            return [*view(dataset), dataset.trigger or "", about]

        return handler

    @friendly
    def on_caption(dataset: str, captioner: str = "pocket", overwrite: bool = False, progress=gr.Progress()) -> str:
        progress(0, desc="loading the captioner")
        return auto_caption(
            workspaces.get(), dataset, captioner, overwrite, lambda done, total: progress((done, total), unit="images")
        )

    @friendly
    def on_replace(chosen, rows, find_text, replace_text):
        dataset = current(chosen)
        apply_caption_table(dataset, rows or [])
        changed = captions.find_replace(dataset, find_text, replace_text, counter=token_counter())
        dataset.save()
        return [*view(dataset), f"Replaced in {changed} caption(s) and saved."]

    @friendly
    def on_trigger(chosen, rows, trigger_word):
        dataset = current(chosen)
        apply_caption_table(dataset, rows or [])
        if not (trigger_word or "").strip():
            raise ValueError("type a trigger word first")
        changed = captions.apply_trigger(dataset, trigger_word.strip(), token_counter())
        dataset.save()
        return [*view(dataset), f"Trigger **{dataset.trigger}** added to {changed} caption(s) and saved."]

    @friendly
    def on_save(chosen, rows):
        dataset = current(chosen)
        changed = apply_caption_table(dataset, rows or [])
        dataset.save()
        return [*view(dataset), f"Saved: {changed} caption(s) changed."]

    @friendly
    def on_prepare(chosen, mode, size):
        return prepare(workspaces.get(), current(chosen).name, mode, size)

    def on_show():
        return gr.Dropdown(choices=list_datasets(workspaces.get().datasets_root))

    prepared = gr.State(None)
    picked.change(on_open, picked, [*view_outputs, trigger], api_visibility="private")
    add.click(
        on_import, [upload, name, picked, trigger, resolution], [*view_outputs, message, upload],
        api_visibility="private",
    )  # fmt: skip
    for key, button in example_buttons.items():
        button.click(on_example(key), None, [*view_outputs, trigger, message], api_visibility="private")
    caption.click(on_caption, [picked, captioner, overwrite], caption_message, api_name="caption").then(
        on_open, picked, [*view_outputs, trigger], api_visibility="private"
    )
    table_outputs = [*view_outputs, table_message]
    replace_all.click(on_replace, [picked, table, find, replace], table_outputs, api_visibility="private")
    apply_trigger.click(on_trigger, [picked, table, trigger], table_outputs, api_visibility="private")
    save.click(on_save, [picked, table], table_outputs, api_visibility="private")
    prepare_button.click(on_prepare, [picked, crop, resolution], [prepare_message, prepared], api_visibility="private")
    # another dataset opened by hand: the answers about the last one are stale (not .change: an import or an
    # example sets the picker and its own answer at once)
    picked.input(lambda: ("", "", "", ""), None, [message, caption_message, prepare_message, table_message],
                  api_visibility="private")  # fmt: skip
    loaded.then(on_show, None, picked, api_visibility="private")
    tab.select(on_show, None, picked, api_visibility="private")
    return picked, prepared
