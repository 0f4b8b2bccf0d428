"""The Playground's "Save mix": the LoRAs switched on, at their weights, become one new file in data/loras/."""

from __future__ import annotations

import shutil

import gradio as gr
import numpy as np
import pytest
import torch
from lora_factory import write_lora

from studio.generate.engine import GenerationEngine, GenerationSettings
from studio.ui import playground_tab


@pytest.fixture()
def form(tmp_path, monkeypatch, sd1_dir):
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    torch.set_num_threads(1)
    loras = tmp_path / "data" / "loras"
    loras.mkdir(parents=True)
    for seed, name in ((1, "star"), (2, "soft")):
        diffusers_file, _ = write_lora(sd1_dir, tmp_path / name, seed=seed, convolutions=True)
        shutil.copy(diffusers_file, loras / f"{name}.safetensors")
    engine = GenerationEngine(device="cpu")
    with gr.Blocks() as demo:
        playground = playground_tab.build(engine)
    by_id = {c.elem_id: c for c in demo.blocks.values() if getattr(c, "elem_id", None)}
    values = {c: c.value for c in playground.inputs} | {by_id["pg-mix-name"]: "my mix"}
    values |= {by_id["pg-model"]: str(sd1_dir), by_id["pg-steps"]: 2, by_id["pg-count"]: 1}
    values |= {by_id["pg-lora-0"]: str(loras / "star.safetensors"), by_id["pg-weight-0"]: 0.7}
    values |= {by_id["pg-lora-1"]: str(loras / "soft.safetensors"), by_id["pg-weight-1"]: -0.4}
    values[by_id["pg-block-1-down"]] = 0.0
    (save,) = [f.fn for f in demo.fns.values() if f.api_name == "playground_save_mix"]
    return engine, playground, by_id, values, save


def _image(engine, settings: dict) -> np.ndarray:
    return np.asarray(engine.generate(GenerationSettings.from_dict(settings))[0].image, dtype=float)


def test_the_saved_mix_is_listed_and_draws_what_the_stack_draws(form, tmp_path) -> None:
    engine, playground, by_id, values, save = form
    *dropdowns, note, file = save(values)
    saved = tmp_path / "data" / "loras" / "my-mix.safetensors"
    assert saved.is_file() and file.visible and file.value["orig_name"] == saved.name  # offered for download
    assert "star 0.7, soft -0.4" in note
    assert str(saved) in [path for _, path in dropdowns[0].choices]

    stacked = playground.settings(values)
    alone = stacked | {"loras": [{"path": str(saved), "weight": 1.0}]}
    assert np.abs(_image(engine, alone) - _image(engine, stacked)).max() <= 2
    assert np.abs(_image(engine, alone) - _image(engine, stacked | {"loras": []})).mean() > 1  # it does something

    *_, again = save(values)  # the same name again: a new file, the first one kept
    assert again.value["orig_name"] == "my-mix-2.safetensors" and saved.with_name(again.value["orig_name"]).is_file()


def test_a_mix_with_every_lora_off_is_refused(form, tmp_path) -> None:
    _, _, by_id, values, save = form
    values |= {by_id["pg-on-0"]: False, by_id["pg-on-1"]: False}
    with pytest.raises(gr.Error, match="switch on at least one LoRA"):
        save(values)
    assert sorted(p.name for p in (tmp_path / "data" / "loras").iterdir()) == ["soft.safetensors", "star.safetensors"]
