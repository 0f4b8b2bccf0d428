"""Config validation, round trips, presets and overrides: a bad config is refused before anything loads."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from studio.train.config import (
    TrainingConfig,
    config_from_dict,
    list_presets,
    load_config_file,
    preset_path,
    resolve_config,
)
from studio.train.methods import config_class, method_names

# a method-specific override for the round trip, where a method has one here (a new method's presets need none)
METHOD_OVERRIDES = {
    "lora": {"rank": "8", "alpha": "4"},
    "dreambooth": {"prior_loss_weight": "0.5"},
    "textual_inversion": {"num_vectors": "3"},
    "finetune": {"ema_decay": "0.995"},
    "svdiff": {"text_encoder_learning_rate": "1e-4"},
}


def test_every_field_has_a_default_and_help() -> None:
    for cls in (TrainingConfig, *(config_class(name) for name in method_names())):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
            assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


@pytest.mark.parametrize("preset", [None, *list_presets()])
def test_round_trip_save_load_equal(tmp_path, preset) -> None:
    method = yaml.safe_load(preset_path(preset).read_text())["method"] if preset else "lora"
    config = resolve_config(preset, overrides={**METHOD_OVERRIDES.get(method, {}), "sample_prompts": "[a, b]"})
    (tmp_path / "config.yaml").write_text(config.to_yaml())
    loaded = load_config_file(tmp_path / "config.yaml")
    assert loaded == config
    assert loaded.to_dict() == config.to_dict()


def test_presets_are_sparse_and_versioned() -> None:
    for name in list_presets():
        data = yaml.safe_load(preset_path(name).read_text())
        assert data["version"] == 1 and data["method"] in method_names()
        assert data.get("description"), f"{name} does not say what it is for (VRAM, time)"
        # sparse: a handful of keys, all known (the headline numbers may repeat a default, to be visible)
        assert set(data.get("training", {})) <= {f.name for f in dataclasses.fields(TrainingConfig)}
        assert len(data.get("training", {})) + len(data.get(data["method"], {})) <= 15


def test_sd15_preset_has_the_fields_defaults() -> None:
    config = resolve_config("lora-sd15")
    assert (config.training.learning_rate, config.method_config.rank, config.training.steps) == (1e-4, 16, 1000)


def test_overrides_win_over_preset() -> None:
    config = resolve_config("lora-pocket", overrides={"training.steps": "7", "lora.rank": "2", "learning_rate": "3e-4"})
    assert (config.training.steps, config.method_config.rank, config.training.learning_rate) == (7, 2, 3e-4)
    assert config.training.resolution == 64  # from the preset


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"lora.rnak": "4"}, "rnak"),
        ({"learning_rte": "1"}, "learning_rte"),
        ({"trainig.steps": "1"}, "trainig"),
    ],
)
def test_unknown_keys_are_refused_by_name(overrides, named) -> None:
    with pytest.raises(ValueError, match=named):
        resolve_config(overrides=overrides)


def test_unknown_key_in_a_file_is_refused(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nmethod: lora\ntraining: {steps: 3, warmup_stesp: 1}\n")
    with pytest.raises(ValueError, match="warmup_stesp"):
        load_config_file(path)
    path.write_text("version: 1\nmethod: lora\nextra: 1\n")
    with pytest.raises(ValueError, match="extra"):
        load_config_file(path)


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("learning_rate", "0", "learning_rate"),
        ("steps", "-3", "steps"),
        ("lr_scheduler", "warp", "lr_scheduler"),
        ("caption_dropout", "1.5", "caption_dropout"),
        ("resolution", "30", "resolution"),
        ("mixed_precision", "fp8", "mixed_precision"),
        ("rank", "0", "rank"),
        ("variant", "lorra", "variant"),
        ("dropout", "1", "dropout"),
        ("target_modules", "[]", "target_modules"),
        ("steps", "many", "steps"),
        ("sample_every", "5", "sample_prompts"),
    ],
)
def test_bad_values_name_the_field(key, value, named) -> None:
    with pytest.raises(ValueError, match=named):
        resolve_config(overrides={key: value})


@pytest.mark.parametrize(
    ("preset", "key", "value", "words"),
    [
        ("lora-pocket", "lora.rank", "100000", "rank must be at most 1024, got 100000"),
        ("lora-pocket", "resolution", "1000000", "resolution must be at most 4096"),
        ("lora-pocket", "steps", "1000000000000", "steps must be at most 1000000"),
        ("lora-pocket", "steps", "1.0e+12", "steps must be a whole number"),  # JSON's 1e12 reaches us as a float
        ("lora-pocket", "steps", "true", "steps must be a whole number, got True"),
        ("lora-pocket", "batch_size", "1000", "batch_size must be at most 64"),
        ("lora-pocket", "gradient_accumulation", "100000", "gradient_accumulation must be at most 1024"),
        ("lora-pocket", "sample_steps", "5000", "sample_steps must be at most 200"),
        ("lora-pocket", "seed", str(2**70), "seed must be at most"),
        ("lora-pocket", "sample_prompts", str(["a circle"] * 17), "at most 16 prompts"),
        ("lora-pocket", "learning_rate", "inf", "learning_rate must be a finite number, got inf"),
        ("lora-pocket", "learning_rate", ".nan", "learning_rate must be a finite number"),
        ("lora-pocket", "max_grad_norm", ".inf", "max_grad_norm must be a finite number"),
        ("lora-pocket", "lora.alpha", "nan", "alpha must be a finite number"),
        ("dreambooth-pocket", "dreambooth.num_class_images", "1000000", "num_class_images must be at most 10000"),
        ("dreambooth-pocket", "dreambooth.lora_rank", "5000", "lora_rank must be at most 1024"),
        ("dreambooth-pocket", "dreambooth.prior_loss_weight", "inf", "prior_loss_weight must be a finite number"),
        ("finetune-style-pocket", "finetune.ema_decay", "nan", "ema_decay must be a finite number"),
        ("ti-object-pocket", "textual_inversion.num_vectors", "2.0", "num_vectors must be a whole number"),
    ],
)
def test_settings_that_size_a_run_are_bounded_with_the_bound_named(preset, key, value, words) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        resolve_config(preset=preset, overrides={key: value})


def test_cli_refuses_a_run_too_big_for_any_machine_before_a_run_folder(tmp_path, monkeypatch, capsys) -> None:
    import studio.train.start

    def no_run(*args, **kwargs):
        raise AssertionError("a run folder was made for a config out of bounds")

    monkeypatch.setattr(studio.train.start, "create_run", no_run)
    from studio.cli import main

    for setting in ("lora.rank=100000", "resolution=1000000", "steps=1000000000000", "learning_rate=inf"):
        code = main(["train", "--preset", "lora-pocket", "--dataset", str(tmp_path), "--set", setting])
        error = capsys.readouterr().err
        assert code == 2 and setting.partition("=")[0].removeprefix("lora.") in error and "Traceback" not in error


def test_old_version_migrates_and_new_version_is_refused() -> None:
    config = config_from_dict({"method": "lora", "train": {"steps": 5}})  # version 0 spelt the section `train`
    assert config.training.steps == 5
    with pytest.raises(ValueError, match="newer"):
        config_from_dict({"version": 99, "method": "lora"})


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="method"):
        config_from_dict({"version": 1, "method": "hypernetwork"})


def test_cli_refuses_a_bad_config_before_loading_a_model(tmp_path, monkeypatch, capsys, shapes_folder) -> None:
    import studio.models

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded for a bad config")

    import studio.train.loop

    for module in (studio.models, studio.train.loop):  # the loop loads through its own name for it
        monkeypatch.setattr(module, "load_pipeline", no_loading)
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    from studio.cli import main

    code = main(["train", "--preset", "lora-pocket", "--dataset", str(shapes_folder), "--set", "learning_rate=-1"])
    assert code == 2
    assert "learning_rate" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_mixed_precision_no_is_the_word_not_a_yaml_boolean(tmp_path) -> None:
    """YAML 1.1 reads an unquoted `no` as False: `--set mixed_precision=no` and a file saying so must both work."""
    assert resolve_config(overrides={"mixed_precision": "no"}).training.mixed_precision == "no"
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nmethod: lora\ntraining: {mixed_precision: no, steps: 3}\n")
    assert load_config_file(path).training.mixed_precision == "no"
