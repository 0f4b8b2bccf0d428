"""Issue 23: problems found before a run folder exists (model, device, precision, fit), SD presets that follow the
dataset's trigger and class, and the CLI printing the Train tab's advice."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import tiny_config

from studio.train import estimate, preflight
from studio.train.config import list_presets, resolve_config
from studio.train.start import create_run, dataset_class, fill_trigger


def _no_run_folders(root: Path) -> bool:
    return not root.exists() or not any(root.iterdir())


def _manifest_dataset(folder: Path, trigger: str, captions: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    items = [{"file": f"{i}.png", "caption": c, "role": "instance"} for i, c in enumerate(captions)]
    (folder / "manifest.json").write_text(json.dumps({"trigger": trigger, "items": items}), encoding="utf-8")
    return folder


# ------------------------------------------------------------------ point 4: the model and the device


def test_an_offline_hub_id_is_refused_at_once_naming_base_model(tmp_path, sd1_dir, shapes_folder, monkeypatch):
    from studio.models import loader

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(loader, "hub_offline", lambda: False)
    monkeypatch.setattr(loader, "hub_reachable", lambda timeout=3.0: False)  # no network, as on a plane
    config = tiny_config(sd1_dir, base_model="someone/a-model-never-downloaded")
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"base_model 'someone/a-model-never-downloaded'.*hf download"):
        create_run(config, shapes_folder, root=tmp_path / "runs")
    assert time.perf_counter() - started < 5 and _no_run_folders(tmp_path / "runs")


def test_fp16_on_a_cpu_is_refused_before_a_folder_with_the_fix(tmp_path, sd1_dir, shapes_folder, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    config = tiny_config(sd1_dir, mixed_precision="fp16")
    with pytest.raises(ValueError, match="mixed_precision fp16 needs a GPU.*--set mixed_precision=no"):
        create_run(config, shapes_folder, root=tmp_path / "runs")
    with pytest.raises(ValueError, match="device is cuda but no CUDA GPU"):
        create_run(tiny_config(sd1_dir, device="cuda"), shapes_folder, root=tmp_path / "runs")
    assert _no_run_folders(tmp_path / "runs")


def test_a_run_that_cannot_fit_is_refused_with_the_numbers(tmp_path, sd1_dir, shapes_folder, monkeypatch):
    monkeypatch.setattr(estimate, "available_ram_gb", lambda: 0.01)
    with pytest.raises(ValueError, match=r"needs about \d+\.\d GB of available RAM .* has 0\.0 GB: lower batch_size"):
        create_run(tiny_config(sd1_dir), shapes_folder, root=tmp_path / "runs")
    monkeypatch.setattr(estimate, "available_ram_gb", lambda: 100.0)
    monkeypatch.setattr(estimate, "free_disk_gb", lambda folder: 0.0)
    with pytest.raises(ValueError, match="checkpoint.* kept.* lower keep_checkpoints"):
        create_run(tiny_config(sd1_dir), shapes_folder, root=tmp_path / "runs")
    assert _no_run_folders(tmp_path / "runs")


# ------------------------------------------------------------------ point 5: disk


def test_a_dreambooth_checkpoint_is_shown_with_its_size_and_one_is_kept(monkeypatch):
    monkeypatch.setattr(estimate, "training_device", lambda config: "cuda")
    config = resolve_config("dreambooth-sd15", None, {"trigger": "zwx", "instance_prompt": "a photo of zwx dog"})
    found = estimate.estimate(config)
    # the UNet's 860 M weights and AdamW's two moments, in float32: 12 bytes each
    assert found.checkpoint_gb == pytest.approx(859.5e6 * 12 / 1e9, rel=0.01)
    assert found.checkpoints_kept == 1 and config.training.keep_checkpoints == 1
    assert "1 checkpoint(s) of 10.31 GB kept" in found.describe()
    assert found.disk_gb < 20  # what a designer's 256 GB disk survives a few runs of (two kept: 21 GB)


# ------------------------------------------------------------------ point 3: SD presets follow the dataset


@pytest.mark.parametrize("preset", [p for p in list_presets() if "pocket" not in p])
def test_every_sd_preset_takes_the_datasets_trigger_and_class(tmp_path, preset):
    dataset = _manifest_dataset(tmp_path / "dog", "zwx", ["a photo of zwx dog"] * 3 + ["zwx dog on a sofa"])
    config = resolve_config(preset)
    fill_trigger(config, dataset)
    text = config.to_yaml()
    assert "<trigger>" not in text and "<class>" not in text
    assert "sks" not in text, "a fixed trigger the dataset never named"
    if config.method == "dreambooth":
        method = config.method_config
        assert (method.trigger, method.instance_prompt) == ("zwx", "a photo of zwx dog")
        assert method.class_prompt == "a photo of a dog"
        assert config.training.sample_prompts == ["a photo of zwx dog"]


def test_the_class_is_the_noun_most_captions_put_after_the_trigger(tmp_path):
    assert dataset_class(_manifest_dataset(tmp_path / "a", "zwx", ["a photo of zwx dog", "zwx dog, grass"])) == "dog"
    no_noun = _manifest_dataset(tmp_path / "b", "zwx", ["zwx, a red circle", "zwx, a blue square"])
    assert dataset_class(no_noun) is None
    config = resolve_config("dreambooth-sd15")
    with pytest.raises(ValueError, match="instance_prompt, class_prompt use <class> .* names no class"):
        fill_trigger(config, no_noun)


def test_the_cli_prints_the_train_tabs_advice(tmp_path, sd1_dir, shapes_folder, monkeypatch, capsys):
    from studio.cli import main
    from studio.train import advice

    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    settings = {"base_model": str(sd1_dir), "resolution": "32", "steps": "1", "sample_every": "0", "device": "cpu"}
    settings["sample_prompts"] = "[]"
    arguments = ["train", "--preset", "lora-pocket", "--dataset", str(shapes_folder), "--no-progress"]
    assert main(arguments + [f"--set={k}={v}" for k, v in settings.items()]) == 0
    printed = capsys.readouterr().out.splitlines()
    expected = advice.risky_settings(resolve_config("lora-pocket", None, settings), 4, None)
    assert printed[0].startswith("Estimate: about") and "RAM about" in printed[0] and "disk about" in printed[0]
    assert printed[1 : 1 + len(expected)] == [f"Warning: {risk}" for risk in expected] and expected


def test_the_preflight_refusals_come_before_the_estimate(monkeypatch):
    """The device check is cheap and first: a CPU user of an fp16 preset hears the fix at once."""
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    config = resolve_config("lora-sd15")
    with pytest.raises(ValueError, match="mixed_precision fp16 needs a GPU"):
        preflight.check_run(config, 4, Path("/nonexistent"))
