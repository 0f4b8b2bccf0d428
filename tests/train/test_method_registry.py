"""Methods register themselves (studio/train/methods/registry.py): a toy method from this test folder, registered
by `register`, is everywhere a method is (the CLI, the Train form, the advice, the estimate, the monitor) and
trains and exports through the shared loop, with no edit to the studio; the studio's own methods are discovered."""

from __future__ import annotations

import dataclasses

import pytest
import toy_method
from conftest import tiny_method_config

from studio import runs
from studio.runs import names as run_names
from studio.train import advice, estimate, monitor
from studio.train.config import resolve_config
from studio.train.methods import MethodFacts, MethodSpec, config_class, get, method_names, register, unregister
from studio.train.methods.base import MethodBase, TrainingMethod


@pytest.fixture()
def toy():
    register(toy_method.SPEC, replace=True)
    yield toy_method.SPEC
    unregister(toy_method.NAME)


def toy_config(**overrides):
    return resolve_config(toy_method.PRESET, overrides={k: str(v) for k, v in overrides.items()})


# ------------------------------------------------------------------ the registry itself


def test_the_studios_methods_are_discovered_in_their_list_order() -> None:
    assert method_names() == ("lora", "dreambooth", "textual_inversion", "finetune", "svdiff")
    for name in method_names():
        spec = get(name)
        assert spec.config_class is config_class(name) and spec.config_class.__module__.endswith(f"{name}.config")
        fields = {f.name for f in dataclasses.fields(spec.config_class)}
        assert set(spec.important) <= fields and set(spec.monitor_fields) <= fields
        assert isinstance(spec.facts(spec.config_class()), MethodFacts)


def test_a_method_spec_is_checked_when_it_is_made() -> None:
    good = {f.name: getattr(toy_method.SPEC, f.name) for f in dataclasses.fields(MethodSpec)}
    with pytest.raises(ValueError, match="has no field"):
        MethodSpec(**good | {"important": ("layre",)})
    with pytest.raises(ValueError, match="lowercase identifier"):
        MethodSpec(**good | {"name": "training"})
    with pytest.raises(ValueError, match="package.module:Class"):
        MethodSpec(**good | {"method_class": "toy_method.method.ToyBiasMethod"})
    with pytest.raises(ValueError, match="trains must be one of"):
        MethodFacts(kind="x", learning_rates=(1e-4, 1e-2), trains="everything", exports="weights")


def test_a_second_method_of_the_same_name_is_refused(toy) -> None:
    other = dataclasses.replace(toy, label="Another toy")
    with pytest.raises(ValueError, match="registered already"):
        register(other)
    with pytest.raises(ValueError, match="method must be one of"):
        get("hypernetwork")


def test_every_hook_the_loop_calls_is_declared_with_a_default() -> None:
    hooks = (
        "prepare",
        "parameter_groups",
        "micro_batch_loss",
        "training_caption",
        "after_optimizer_step",
        "inference_weights",
        "export_difference",
        "load_export",
    )
    for hook in hooks:
        assert hook in TrainingMethod.__dict__ and callable(getattr(MethodBase, hook)), hook
    base = MethodBase()
    assert base.parameter_groups(1e-3) is None and base.micro_batch_loss(None, 0) is None
    assert base.training_caption(0, 0, 0, "a zq") == "a zq"
    with base.inference_weights(None):
        pass


# ------------------------------------------------------------------ the toy method, everywhere a method is


def test_the_cli_lists_the_toy_method(toy, capsys) -> None:
    from studio.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    assert "toy_bias: Toy bias (tests)" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert "Toy bias (tests)" in " ".join(capsys.readouterr().out.split())


def test_the_train_form_offers_the_toy_method_and_its_section(toy, tmp_path) -> None:
    from studio.ui import config_form
    from studio.ui.app import build_app
    from studio.workspace import Workspaces

    assert config_form.METHODS["toy_bias"] == "Toy bias (tests)" and config_form.IMPORTANT["toy_bias"] == ("layer",)
    config = toy_config()
    values = config_form.values_from_config(config)
    assert config_form.config_from_values("toy_bias", values).to_dict() == config.to_dict()

    components = build_app(workspaces=Workspaces(tmp_path / "data")).get_config_file()["components"]
    by_id = {c["props"].get("elem_id"): c["props"] for c in components if c["props"].get("elem_id")}
    assert ["Toy bias (tests)", "toy_bias"] in [list(choice) for choice in by_id["train-method"]["choices"]]
    layer = by_id["cfg-toy_bias-layer"]
    assert [list(choice)[1] for choice in layer["choices"]] == ["conv_out", "conv_in"]
    assert layer["info"] == "The UNet layer whose biases learn."
    assert "cfg-toy_bias-train_text_encoder" in by_id  # under Advanced


def test_the_advice_uses_the_toy_methods_range_and_checks(toy) -> None:
    assert advice.risky_settings(toy_config(sample_every=1, sample_prompts="[a zq]", resolution=64), 5, "zq") == []
    assert any("far above the usual 0.001–0.1" in w for w in advice.risky_settings(toy_config(learning_rate=1), 5))
    assert toy_method.WRONG_LAYER in advice.risky_settings(toy_config(layer="conv_in"), 5, "zq")
    assert advice.trigger_word(toy_config(), "zq") == "zq"  # no word of its own: the dataset's


def test_the_estimate_counts_what_the_toy_method_trains(toy, sd1_dir) -> None:
    config = toy_config(base_model=sd1_dir, device="cpu")
    work = estimate.run_work(config)
    assert estimate.method_kind(config) == "toy_bias" and work.trained_params == toy_method.LATENT_CHANNELS
    assert work.export_gb == pytest.approx(toy_method.LATENT_CHANNELS * 4 / estimate.GB)
    assert estimate.estimate(config).seconds > 0
    assert estimate.estimate(toy_config(base_model="pocket")).seconds > 0


def test_the_toy_method_trains_two_steps_and_its_export_is_listed(toy, tmp_path, sd1_dir, shapes_folder) -> None:
    """Through the entry point the CLI and the UI start: train, export, check the export with the method's own
    load_export (every other hook keeps its default)."""
    import torch
    from safetensors.torch import load_file

    from studio.train.start import create_run, run_training

    config = tiny_method_config(sd1_dir, "toy_bias", {"steps": 2, "learning_rate": 0.05, "sample_every": 0})
    assert run_training(create_run(config, shapes_folder, root=tmp_path)) == "finished"
    (run_dir,) = tmp_path.iterdir()
    summary = monitor.summarise(run_dir)
    assert summary.status == "finished" and summary.method == "toy_bias" and summary.settings["layer"] == "conv_out"
    assert [path.name for path in summary.exports] == [toy_method.EXPORT_FILE]
    exported = load_file(str(summary.exports[0]))["unet.conv_out.bias"]
    base = load_file(str(sd1_dir / "unet" / "diffusion_pytorch_model.safetensors"))["conv_out.bias"]
    assert exported.shape == (toy_method.LATENT_CHANNELS,) and not torch.equal(exported, base.float())  # it learnt
    check = next(e for e in runs.read_events(run_dir) if e["type"] == "export")
    assert check["check"] == "quick" and check["max_difference"] < 1e-3  # reloaded by its own load_export
    # every list reads the run by its method's own label
    assert run_names.run_label(run_dir) == f"{shapes_folder.name} · Toy bias (tests)"


def test_a_method_no_longer_registered_is_refused_by_name(toy) -> None:
    unregister(toy_method.NAME)
    with pytest.raises(ValueError, match="method must be one of lora, dreambooth, .* got 'toy_bias'"):
        toy_config()
