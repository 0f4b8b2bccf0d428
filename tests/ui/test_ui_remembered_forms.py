"""The Playground's and Compare's forms as one named structure: read into a dict and written back, as a page reload
(the dict kept in the browser) and a dropped PNG do."""

from __future__ import annotations

import gradio as gr
import pytest

from studio.generate.engine import GenerationEngine
from studio.ui import compare_tab, playground_tab, remembered


@pytest.fixture()
def tabs(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    (tmp_path / "loras").mkdir()
    for name in ("bold", "soft"):
        (tmp_path / "loras" / f"{name}.safetensors").write_bytes(b"not read by the form")
    engine = GenerationEngine(device="cpu")
    with gr.Blocks():
        playground = playground_tab.build(engine)
        compare = compare_tab.build(engine, playground)
    return tmp_path, playground, compare


def _value(update):
    return update.value if isinstance(update, gr.components.Component) else update


def test_the_playground_form_comes_back_as_it_was_saved(tabs) -> None:
    data, playground, _ = tabs
    form = playground.form
    values = {component: component.value for component in form.components}
    values |= {
        form.prompt: "a blue square",
        form.seed: 7,
        form.count: 3,
        form.slots[0].lora: str(data / "loras" / "soft.safetensors"),
    }
    values |= {form.slots[0].weight: -0.4, form.slots[0].blocks["up"]: 0.0}
    saved = form.settings(values)
    updates, skipped = form.updates(saved)
    assert not skipped and set(updates) == set(form.components)  # every field, by name
    assert {component: _value(update) for component, update in updates.items()} == values


def test_a_restore_leaves_out_what_is_outside_the_data_folder_or_gone(tabs, tmp_path) -> None:
    data, playground, _ = tabs
    form = playground.form
    updates, skipped = form.updates(
        {"prompt": "x", "loras": [{"path": "/etc/passwd"}, {"path": str(data / "loras" / "gone.safetensors")}]}
    )
    assert _value(updates[form.slots[0].lora]) == "" and len(skipped) == 2
    assert form.count not in updates  # a PNG's settings are one image's: the count stays


def test_the_compare_form_comes_back_as_it_was_saved(tabs) -> None:
    data, _, compare = tabs
    form = compare.form
    values = {component: component.value for component in form.components}
    values |= {form.fields["prompt"]: "a yellow triangle", form.axes["x"].kind: "steps", form.axes["x"].values: "2, 4"}
    values |= {form.extras: {"loras": [{"path": str(data / "loras" / "bold.safetensors"), "weight": 0.5}]}}
    saved = form.read(values)
    assert str(data) not in str(saved["axes"])  # runs are ids, no server path
    updates = form.updates(saved)
    assert _value(updates[form.fields["prompt"]]) == "a yellow triangle"
    assert _value(updates[form.axes["x"].values]) == "2, 4" and _value(updates[form.axes["x"].kind]) == "steps"
    assert updates[form.extras] == values[form.extras]


def test_the_browser_key_is_kept_in_the_data_folder(tmp_path) -> None:
    assert remembered.secret(tmp_path) == remembered.secret(tmp_path)  # a restart can read what was saved before
    assert (tmp_path / remembered.SECRET_FILE).is_file()
