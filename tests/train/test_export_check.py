"""The export check sized to its purpose (issue 23 point 2): quick by default, without a second base model."""

from __future__ import annotations

import pytest
from conftest import tiny_config, tiny_method_config

from studio import runs
from studio.train import export, export_check, loop
from studio.train.start import create_run, run_training


def _count_base_loads(monkeypatch) -> list[int]:
    """Base-model loads after training began (the run's own load is counted before it)."""
    loads: list[int] = []
    real = loop.load_base_pipeline

    def counted(*args, **kwargs):
        loads.append(1)
        return real(*args, **kwargs)

    for module in (loop, export, export_check):  # each calls it by its own name
        monkeypatch.setattr(module, "load_base_pipeline", counted)
    return loads


def test_quick_lora_check_reloads_each_file_into_the_trained_pipeline(tmp_path, sd1_dir, shapes_folder, monkeypatch):
    loads = _count_base_loads(monkeypatch)
    run_dir = create_run(tiny_config(sd1_dir, steps=2, learning_rate=1e-2), shapes_folder, root=tmp_path)
    assert run_training(run_dir) == "finished"
    exports = runs.replay(run_dir).exports
    assert len(exports) == 2 and all(e["check"] == "quick" and e["max_difference"] < 1e-4 for e in exports)
    assert len(loads) == 1, "the quick check loaded a second base model"


def test_quick_check_still_finds_a_file_that_is_not_what_was_trained(tmp_path, sd1_dir, shapes_folder, monkeypatch):
    from studio.adapters import lora_files

    real = lora_files.baked_lora_layers

    def doubled(module, name):  # a writer bug: every lora_B written twice as large
        layers, config = real(module, name)
        return {k: v * 2 if "lora_B" in k else v for k, v in layers.items()}, config

    monkeypatch.setattr(lora_files, "baked_lora_layers", doubled)
    run_dir = create_run(tiny_config(sd1_dir, steps=2, learning_rate=5e-2), shapes_folder, root=tmp_path)
    run_training(run_dir)
    events = runs.read_events(run_dir)
    diffusers_file = next(e for e in events if e["type"] == "export" and "diffusers" in e["path"])
    assert diffusers_file["max_difference"] > 1e-3
    assert any(e["type"] == "warning" and "reloads with a difference" in e["message"] for e in events)


def test_skip_checks_nothing_and_full_keeps_the_guided_render(tmp_path, sd1_dir, shapes_folder, monkeypatch):
    loads = _count_base_loads(monkeypatch)
    skip = create_run(tiny_config(sd1_dir, steps=1, export_check="skip"), shapes_folder, root=tmp_path)
    run_training(skip)
    assert all("max_difference" not in e for e in runs.replay(skip).exports) and len(loads) == 1
    full = create_run(tiny_config(sd1_dir, steps=1, export_check="full"), shapes_folder, root=tmp_path)
    run_training(full)
    assert all(e["check"] == "full" for e in runs.replay(full).exports)
    assert len(loads) == 1 + 1 + 2, "full: a fresh base per exported file"


def test_quick_textual_inversion_check_compares_the_vectors(tmp_path, sd1_dir, shapes_folder, monkeypatch):
    loads = _count_base_loads(monkeypatch)
    settings = {"steps": 1, "placeholder_token": "<zq>", "initializer_token": "art", "export_a1111": True}
    run_dir = create_run(tiny_method_config(sd1_dir, "textual_inversion", settings), shapes_folder, root=tmp_path)
    run_training(run_dir)
    exports = runs.replay(run_dir).exports
    assert len(exports) == 2 and all(e["max_difference"] == 0.0 for e in exports) and len(loads) == 1


@pytest.mark.parametrize("check", ["quick", "skip"])
def test_dreambooth_pipeline_folder_is_not_loaded_a_second_time(tmp_path, sd1_dir, shapes_folder, monkeypatch, check):
    from diffusers import StableDiffusionPipeline

    reloads: list[int] = []
    real = StableDiffusionPipeline.from_pretrained.__func__

    def counted(cls, *args, **kwargs):
        reloads.append(1)
        return real(cls, *args, **kwargs)

    settings = {
        "steps": 1,
        "instance_prompt": "a photo of sks circle",
        "class_prompt": "a photo of a circle",
        "num_class_images": 1,
        "class_image_steps": 1,
        "export_check": check,
    }
    run_dir = create_run(tiny_method_config(sd1_dir, "dreambooth", settings), shapes_folder, root=tmp_path)
    monkeypatch.setattr(StableDiffusionPipeline, "from_pretrained", classmethod(counted))
    run_training(run_dir)
    assert runs.replay(run_dir).status == "finished"
    assert len(reloads) == 1, "only the run's own base load"
    assert not any(e["type"] == "warning" and "reloads" in e.get("message", "") for e in runs.read_events(run_dir))
