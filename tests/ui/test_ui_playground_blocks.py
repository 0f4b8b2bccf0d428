"""The Playground's per-block weights: the form's sliders become a LoRA's `blocks`, and only when they matter."""

from __future__ import annotations

import gradio as gr
import pytest

from studio.generate.engine import GenerationEngine, GenerationSettings
from studio.ui import playground_tab


@pytest.fixture()
def form(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    lora = tmp_path / "loras" / "star.safetensors"
    lora.parent.mkdir()
    lora.write_bytes(b"not read by the form")
    with gr.Blocks():
        playground = playground_tab.build(GenerationEngine(device="cpu"))
    by_id = {component.elem_id: component for component in playground.inputs}
    values = {component: component.value for component in playground.inputs}
    values[by_id["pg-lora-0"]] = str(lora)
    return playground, by_id, values


def test_block_sliders_become_the_loras_blocks(form) -> None:
    playground, by_id, values = form
    values[by_id["pg-block-0-down"]] = 0.0
    values[by_id["pg-block-0-up"]] = 1.5
    settings = playground.settings(values)
    assert settings["loras"][0]["blocks"] == {"down": 0.0, "mid": 1.0, "up": 1.5}
    parsed = GenerationSettings.from_dict(settings)
    assert parsed.lora_specs[0].blocks == {"down": 0.0, "mid": 1.0, "up": 1.5}


def test_all_ones_means_the_plain_weight(form) -> None:
    playground, _, values = form
    assert "blocks" not in playground.settings(values)["loras"][0]
