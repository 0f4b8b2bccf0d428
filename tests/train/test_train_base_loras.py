"""base_loras: a LoRA trained on top of another (merged into the base first) stacks with it exactly as trained."""

from __future__ import annotations

import pytest
import torch
from conftest import RESOLUTION, tiny_config

from studio import runs
from studio.train.loop import prepare_trainer
from studio.train.start import create_run, run_training

PROMPT = "a red circle"


def _first_lora(tmp_path, sd1_dir, shapes_folder):
    config = tiny_config(sd1_dir, steps=3, learning_rate=5e-2, sample_prompts=f'["{PROMPT}"]')
    run_dir = create_run(config, shapes_folder, run_id="first", root=tmp_path)
    assert run_training(run_dir) == "finished"
    return run_dir


def _render_with(sd1_dir, loras: list[str]):
    """The tiny base model with `loras` (PATH:WEIGHT) stacked as the Playground stacks them (unfused)."""
    from studio.adapters.stack import AdapterStack, LoraSpec
    from studio.models import load_pipeline
    from studio.train.export import render

    pipe = load_pipeline(str(sd1_dir), device="cpu", dtype=torch.float32).pipe
    AdapterStack().apply_loras(pipe, [LoraSpec.parse(text) for text in loras])
    return render(pipe, PROMPT, RESOLUTION)


def test_a_lora_trained_on_top_of_another_stacks_with_it(tmp_path, sd1_dir, shapes_folder) -> None:
    from studio.train.config import load_config_file
    from studio.train.export import render

    first = _first_lora(tmp_path, sd1_dir, shapes_folder)
    config = tiny_config(
        sd1_dir, steps=3, learning_rate=5e-2, seed=1, sample_prompts=f'["{PROMPT}"]', base_loras=f'["{first}:0.5"]'
    )
    second = create_run(config, shapes_folder, run_id="second", root=tmp_path)
    # the run records the file it merged, absolute, so a resume from anywhere merges the same weights
    recorded = load_config_file(second / runs.CONFIG).training.base_loras
    assert recorded == [f"{first.resolve()}/outputs/lora-diffusers/pytorch_lora_weights.safetensors:0.5"]

    # before training the new adapter is a no-op: the pipeline is the base model plus half of the first LoRA
    merged = render(prepare_trainer(second).pipe, PROMPT, RESOLUTION)
    half_first = _render_with(sd1_dir, [f"{first}:0.5"])
    assert abs(half_first - _render_with(sd1_dir, [])).max() > 1e-2
    assert abs(half_first - merged).max() < 2e-3

    assert run_training(second) == "finished"
    # the export holds only the new adapter; it reloads (onto the base with the first merged in) to the trained output
    exports = [e for e in runs.read_events(second) if e["type"] == "export"]
    assert exports and all(e["max_difference"] < 1e-3 for e in exports)
    trained = render(prepare_trainer(second).pipe, PROMPT, RESOLUTION)
    assert abs(trained - merged).max() > 1e-2  # the second LoRA learnt something
    # stacked in the Playground's way, the two give exactly the model the second was trained on
    assert abs(_render_with(sd1_dir, [f"{first}:0.5", str(second)]) - trained).max() < 2e-3
    assert abs(_render_with(sd1_dir, [str(second)]) - trained).max() > 1e-2  # without the first: another model


def test_a_missing_base_lora_is_refused_before_anything_loads(tmp_path, sd1_dir, shapes_folder) -> None:
    config = tiny_config(sd1_dir, base_loras=f'["{tmp_path / "nowhere.safetensors"}"]')
    with pytest.raises(ValueError, match="base_loras: no LoRA at"):
        create_run(config, shapes_folder, root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
