"""A run has a name a person gave it (or dataset and method) and a trigger beside it; every list shows that label.
And what is checked before a run folder is written: a trigger inferred from a plain folder's captions, a config
that needs a GPU refused on a machine without one."""

from __future__ import annotations

import json

import pytest
from conftest import RESOLUTION, tiny_config

from studio import runs
from studio.runs import names as run_names
from studio.train import hardware
from studio.train.config import resolve_config
from studio.train.start import create_run


@pytest.fixture()
def zq_folder(tmp_path, shapes_folder):
    """A plain folder of images + .txt captions, every caption holding the same made-up word."""
    folder = tmp_path / "my-zq-shapes"
    folder.mkdir()
    for image in shapes_folder.glob("*.png"):
        (folder / image.name).write_bytes(image.read_bytes())
        caption = image.with_suffix(".txt").read_text().replace("a ", "a zq ", 1)
        (folder / image.with_suffix(".txt").name).write_text(caption)
    return folder


def test_a_new_run_is_named_after_dataset_and_method_and_renamed_without_moving(tmp_path, sd1_dir, zq_folder):
    config = tiny_config(sd1_dir, sample_prompts='["a <trigger> on a black background"]')
    first = create_run(config, zq_folder, run_id="r1", root=tmp_path)
    second = create_run(config, zq_folder, run_id="r2", root=tmp_path)
    assert run_names.identity(first) == run_names.RunIdentity("r1", "my-zq-shapes · LoRA", "zq")
    assert run_names.identity(second).name == "my-zq-shapes · LoRA 2"  # two alike would read as one in a picker
    assert run_names.run_label(first) == "my-zq-shapes · LoRA · trigger zq"
    # the trigger inferred from the captions filled the preset's sample prompts
    assert runs.replay(first).status == "created"
    assert "a zq on a black background" in (first / runs.CONFIG).read_text()

    renamed = run_names.rename_run(first, "  purple\nstars  ")
    assert (renamed.name, renamed.trigger, first.name) == ("purple stars", "zq", "r1")
    assert run_names.run_label(first) == "purple stars · trigger zq"
    with pytest.raises(ValueError, match="empty"):
        run_names.rename_run(first, "   ")


def test_a_run_from_before_names_gets_one_worked_out(tmp_path):
    config = resolve_config(preset="dreambooth-lora-pocket", overrides={"trigger": "sks", "instance_prompt": "a sks"})
    source = tmp_path / "datasets" / "example-stars" / "prepared" / "center-64"
    folder = runs.create_run_folder(config.to_yaml(), {"source": str(source), "items": []}, "old", tmp_path)
    assert run_names.identity(folder) == run_names.RunIdentity("old", "stars · DreamBooth LoRA", "sks")


def test_adapters_and_mixes_read_by_the_run_label(tmp_path, monkeypatch, sd1_dir, zq_folder):
    from studio.adapters.stack import LORA_FILE, LoraSpec
    from studio.generate import library
    from studio.generate.mix import describe_mix

    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    run = create_run(tiny_config(sd1_dir), zq_folder, run_id="r1")
    lora = run / "outputs" / "lora-diffusers" / LORA_FILE
    lora.parent.mkdir(parents=True)
    lora.write_bytes(b"")
    checkpoint = run / "checkpoints" / "step-000200"
    checkpoint.mkdir()
    assert [c.label for c in library.list_loras()] == ["my-zq-shapes · LoRA · trigger zq"]
    assert library.adapter_label(checkpoint) == "my-zq-shapes · LoRA · trigger zq step 200"
    assert library.adapter_label(tmp_path / "loras" / "bold.safetensors") == "bold"
    specs = [LoraSpec(str(lora), 0.8), LoraSpec(str(tmp_path / "loras" / "bold.safetensors"), 0.6)]
    assert describe_mix(specs) == "my-zq-shapes · LoRA · trigger zq 0.8, bold 0.6"


def test_cli_runs_rename_and_list_show_the_name(tmp_path, monkeypatch, capsys, sd1_dir, zq_folder):
    from studio.cli import main

    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    create_run(tiny_config(sd1_dir), zq_folder, run_id="r1")
    assert main(["runs", "rename", "r1", "purple stars"]) == 0
    assert "purple stars · trigger zq" in capsys.readouterr().out
    assert main(["runs", "list"]) == 0
    assert "r1  created" in (out := capsys.readouterr().out) and "purple stars · trigger zq" in out
    assert main(["runs", "show", "r1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["run_id"], shown["name"], shown["trigger"]) == ("r1", "purple stars", "zq")
    assert main(["runs", "rename", "nope", "x"]) == 2


def test_cli_train_infers_the_trigger_of_a_plain_folder(tmp_path, monkeypatch, capsys, sd1_dir, zq_folder):
    """`studio train --preset lora-pocket` on images + .txt whose captions share a made-up word: no refusal."""
    from studio.cli import main

    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STUDIO_THREADS", "1")
    settings = {"base_model": sd1_dir, "device": "cpu", "resolution": RESOLUTION, "steps": 1, "rank": 2}
    argv = ["train", "--preset", "lora-pocket", "--dataset", str(zq_folder), "--run-id", "plain", "--no-progress"]
    argv += [f"--set={k}={v}" for k, v in settings.items()] + ["--set=sample_every=0", "--set=checkpoint_every=0"]
    assert main(argv) == 0, capsys.readouterr().err
    config = (tmp_path / "runs" / "plain" / runs.CONFIG).read_text()
    assert "a zq on a black background" in config and "<trigger>" not in config


def test_a_caption_word_that_is_not_in_every_caption_is_no_trigger(tmp_path, sd1_dir, shapes_folder):
    config = tiny_config(sd1_dir, sample_prompts='["a <trigger> on a green background"]')
    with pytest.raises(ValueError, match="has no trigger word"):
        create_run(config, shapes_folder, root=tmp_path)


def test_fp16_on_a_machine_without_a_gpu_is_refused_before_a_run_folder_exists(tmp_path, monkeypatch, zq_folder):
    monkeypatch.setattr(hardware, "gpu_available", lambda: False)
    config = resolve_config(preset="lora-sd15")
    assert config.training.mixed_precision == "fp16"
    with pytest.raises(ValueError, match="mixed_precision fp16 needs a GPU"):
        create_run(config, zq_folder, root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
    warnings = hardware.device_warnings(config)
    assert "needs a GPU" in warnings[0] and "hours to days" in warnings[1]
    fixed = hardware.for_this_machine(config)
    assert fixed.training.mixed_precision == "no" and hardware.device_problem(fixed) is None
    assert hardware.device_problem(config, gpu=True) is None  # a GPU machine keeps the preset as it is
    assert hardware.for_this_machine(config, gpu=True).training.mixed_precision == "fp16"


def test_dataset_import_defaults_to_the_pocket_models_resolution(tmp_path, capsys, shapes_folder):
    from studio.cli import main

    root = ["--root", str(tmp_path), "--tokenizer", "none"]
    # 32 px images: refused under 512 px rules (a quarter of it is 128), kept with a warning at pocket's 64 px
    assert main(["dataset", "import", str(shapes_folder), "--name", "small", "--json", *root]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["accepted"]) == 4 and not report["rejected"]
    assert main(["dataset", "import", str(shapes_folder), "--name", "sd", "--model", "sd15", "--json", *root]) == 0
    assert len(json.loads(capsys.readouterr().out)["rejected"]) == 4
