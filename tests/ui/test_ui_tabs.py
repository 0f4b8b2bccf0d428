"""Every tab shares one small interface (`studio.ui.tab.BuiltTab`): what the browser remembers of it, and what it
answers when opened or when the data folder's runs change. The page assembles the tabs through it alone."""

from __future__ import annotations

import random

import gradio as gr
import pytest
from PIL import Image

from studio.generate.engine import GenerationEngine
from studio.generate.png_metadata import save_png
from studio.ui import app, playground_tab, remembered, visitors
from studio.ui.playground_form import PlaygroundForm, Slot
from studio.ui.tab import Answer, BuiltTab
from studio.workspace import Workspaces


def _built(workspaces) -> tuple[dict, dict]:
    with gr.Blocks() as blocks:
        loaded = blocks.load(lambda: None)
        _, tabs, built = app.build_tabs(loaded, GenerationEngine(device="cpu"), workspaces)
    return tabs, built


def _components(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | set | tuple) else [value]


def test_every_tab_of_the_page_exposes_the_interface(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    tabs, built = _built(Workspaces(tmp_path / "data"))
    assert list(built) == list(tabs) == ["dataset", "train", "runs", "generate", "playground", "compare"]
    assert all(isinstance(shown, BuiltTab) for shown in built.values())
    remembering = {tab_id for tab_id, shown in built.items() if shown.memory is not None}
    assert remembering == {"dataset", "playground", "compare"}  # training's state is its run folder, read again
    assert {shown.memory.key for tab_id, shown in built.items() if tab_id in remembering} == {
        "dataset", "playground", "compare"
    }  # fmt: skip
    assert {tab_id for tab_id, shown in built.items() if shown.on_select} == {
        "dataset", "train", "runs", "playground", "compare"
    }  # fmt: skip
    assert {tab_id for tab_id, shown in built.items() if shown.on_runs_changed} == {"playground", "compare"}
    for shown in built.values():
        if shown.memory is not None:  # a reload writes back only what was saved
            assert shown.memory.watched and set(shown.memory.outputs) <= set(shown.memory.watched)
        answer = shown.on_select
        while answer is not None:
            assert isinstance(answer, Answer) and callable(answer.fn)
            assert all(isinstance(c, gr.components.Component) for c in _components(answer.outputs))
            answer = answer.then


def test_a_public_page_has_no_playground_or_compare_and_no_run_watch(tmp_path) -> None:
    tabs, built = _built(visitors.public_workspaces(tmp_path / "data"))
    assert list(built) == ["dataset", "train", "runs", "generate"]
    assert not any(shown.on_runs_changed for shown in built.values())


def test_the_playground_memory_restores_by_name(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    with gr.Blocks():
        playground = playground_tab.build(GenerationEngine(device="cpu"))
    memory = playground.memory
    assert isinstance(memory, remembered.Memory) and memory.key == "playground"
    values = {c: c.value for c in memory.watched} | {playground.form.prompt: "a blue square", playground.form.seed: 9}
    written = memory.write(memory.read(values))
    assert written[playground.form.prompt] == "a blue square" and written[playground.form.seed] == 9


def _form_built_in(order: list[str]) -> PlaygroundForm:
    """A Playground form whose components are made in `order` (their ids, and any position, follow it)."""
    makers = {
        "prompt": lambda: gr.Textbox(),
        "negative": lambda: gr.Textbox(),
        "sampler": lambda: gr.Dropdown(choices=["default", "euler_a"], value="default"),
        "steps": lambda: gr.Slider(1, 100),
        "guidance": lambda: gr.Slider(0, 20),
        "count": lambda: gr.Slider(1, 8),
        "seed": lambda: gr.Number(precision=0),
        "model": lambda: gr.Textbox(),
        "fast": lambda: gr.Checkbox(),
        "quantize": lambda: gr.Radio(choices=["none", "int8"]),
        "fuse": lambda: gr.Checkbox(),
        "stacking": lambda: gr.Radio(choices=["scoped", "sum"]),
        "embeddings": lambda: gr.Dropdown(multiselect=True),
        "svdiff": lambda: gr.Dropdown(),
        "svdiff_weight": lambda: gr.Slider(-2, 2),
        "slots": lambda: [Slot(gr.Dropdown(), gr.Slider(-2, 2), gr.Checkbox())],
    }
    with gr.Blocks():
        made = {name: makers[name]() for name in order}
    return PlaygroundForm(**made)


def test_a_restore_fills_each_field_by_name_whatever_order_the_fields_are_made_in(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    saved = {"prompt": "a zq circle", "negative_prompt": "blurry", "sampler": "euler_a", "steps": 7, "guidance": 3.5,
             "count": 2, "seed": 42, "model": "pocket", "fast": True, "quantize": "int8", "fuse": True,
             "stacking": "sum"}  # fmt: skip
    names = list(PlaygroundForm.__dataclass_fields__)
    shuffled = names[::-1]
    random.Random(0).shuffle(shuffled)
    for order in (names, names[::-1], shuffled):
        form = _form_built_in(order)
        updates, skipped = form.updates(saved)
        assert not skipped
        shown = {name: updates[component] for name, component in form.scalars.items()}
        assert shown == saved  # every value in its own field, none shifted into a neighbour's
        assert set(updates) == set(form.components)


@pytest.fixture()
def playground_blocks(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    with gr.Blocks() as blocks:
        playground = playground_tab.build(GenerationEngine(device="cpu"))
    return blocks, playground


def test_a_dropped_png_restores_the_form_by_name_and_keeps_the_count(playground_blocks, tmp_path) -> None:
    blocks, playground = playground_blocks
    (restore,) = [f for f in blocks.fns.values() if f.api_name == "playground_restore"]
    by_id = {c.elem_id: c for c in blocks.blocks.values() if getattr(c, "elem_id", None)}
    png = save_png(Image.new("RGB", (8, 8)), tmp_path / "made-here.png",
                   {"prompt": "a zq star", "seed": 5, "steps": 11, "guidance": 2.5, "count": 4})  # fmt: skip
    updates = restore.fn(str(png))
    assert isinstance(updates, dict) and set(updates) <= set(restore.outputs)
    assert updates[by_id["pg-prompt"]] == "a zq star" and updates[by_id["pg-seed"]] == 5
    assert updates[by_id["pg-steps"]] == 11 and updates[by_id["pg-guidance"]] == 2.5
    assert by_id["pg-count"] not in updates  # one image's settings: the count stays as it is
    assert "seed 5" in updates[by_id["pg-status"]] and updates[by_id["pg-restore"]] is None


def test_a_png_without_settings_is_refused_without_a_traceback(playground_blocks, tmp_path) -> None:
    blocks, _ = playground_blocks
    (restore,) = [f for f in blocks.fns.values() if f.api_name == "playground_restore"]
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    with pytest.raises(gr.Error, match="no studio settings") as refused:
        restore.fn(str(plain))
    assert refused.value.print_exception is False  # errors.refusal: one line in the log


def test_the_page_answers_each_tabs_select_through_the_interface(tmp_path, monkeypatch) -> None:
    """build_app attaches every `on_select` to its own tab (and nothing of a tab's internals besides)."""
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    blocks = app.build_app(GenerationEngine(device="cpu"), Workspaces(tmp_path / "data"))
    tab_ids = {block._id: block.id for block in blocks.blocks.values() if isinstance(block, gr.Tab)}
    selected: dict[str, set] = {}
    for fn in blocks.fns.values():
        for target, event in fn.targets:
            if event == "select" and target in tab_ids:
                selected.setdefault(tab_ids[target], set()).add(getattr(fn.fn, "__name__", ""))
    assert {"on_show"} < selected["dataset"] and {"on_datasets"} < selected["train"]
    assert {"on_refresh"} < selected["runs"] and "refreshed_lists" in selected["playground"]
    assert "refreshed" in selected["compare"] and selected["generate"] - {"<lambda>"} == set()


def test_each_grid_button_answers_a_refusal_under_the_grid(tmp_path, monkeypatch) -> None:
    """The three grid handlers share one render-or-refuse helper: a refusal is the status line alone."""
    from studio.ui import compare_tab

    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    with gr.Blocks() as blocks:
        compare = compare_tab.build(GenerationEngine(device="cpu"))
    fns = {f.api_name: f for f in blocks.fns.values()}
    status = next(c for c in blocks.blocks.values() if getattr(c, "elem_id", None) == "cmp-status")
    form = compare.form
    values = {c: c.value for c in form.components} | {form.axes["x"].kind: ""}
    answers = {
        "compare_checkpoints": fns["compare_checkpoints"].fn("no-such-run"),
        "compare_grid": fns["compare_grid"].fn(values),
        "compare_stacked_vs_alone": fns["compare_stacked_vs_alone"].fn(values),
    }
    assert all(set(answer) == {status} and answer[status].startswith("⚠ ") for answer in answers.values())
    assert "X axis" in answers["compare_grid"][status] and "needs LoRAs" in answers["compare_stacked_vs_alone"][status]
