"""Trigger-scoped stacking: a LoRA taught with a trigger acts on prompts that say it; `sum` is the plain stack."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from lora_factory import write_lora

from studio.adapters.stack import LoraSpec
from studio.generate import GenerationEngine, GenerationSettings
from studio.generate.scoping import METADATA_KEY, lora_triggers, run_trigger, scope_to_prompt


@pytest.fixture(scope="module")
def lora(tmp_path_factory, sd1_dir):
    return write_lora(sd1_dir, tmp_path_factory.mktemp("lora"), seed=1)[0]


@pytest.fixture(scope="module")
def engine():
    torch.set_num_threads(1)
    return GenerationEngine(device="cpu")


def _with_trigger_metadata(source, target, phrase: str):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), "pt") as stream:
        tensors = {key: stream.get_tensor(key) for key in stream.keys()}
        metadata = dict(stream.metadata() or {})
    save_file(tensors, str(target), metadata=metadata | {METADATA_KEY: phrase})
    return target


def _run_folder(tmp_path, lora, captions: list[str], source: str = "/nowhere"):
    """A finished LoRA run as the studio lays it out: config, dataset manifest, the export under outputs/."""
    from studio.runs import CONFIG, DATASET
    from studio.train.config import resolve_config

    run = tmp_path / "runs" / "r1"
    export = run / "outputs" / "lora-diffusers"
    export.mkdir(parents=True)
    shutil.copy(lora, export / lora.name)
    (run / CONFIG).write_text(resolve_config("lora-pocket").to_yaml(), encoding="utf-8")
    items = [{"file": f"{i}.png", "caption": caption} for i, caption in enumerate(captions)]
    (run / DATASET).write_text(__import__("json").dumps({"source": source, "items": items}), encoding="utf-8")
    return run


def test_a_lora_is_on_only_for_prompts_holding_its_trigger() -> None:
    specs = [LoraSpec("a.safetensors", trigger="zq"), LoraSpec("b.safetensors", trigger="vx, heartish")]
    on = [s.enabled for s in scope_to_prompt(specs, "a purple ZQ on a black background")]
    assert on == [True, False]
    assert [s.enabled for s in scope_to_prompt(specs, "a heartish thing, and a zq")] == [True, True]
    # whole words only: "zqa" does not say "zq"
    assert [s.enabled for s in scope_to_prompt(specs, "a zqa on a black background")] == [False, False]
    # a LoRA the user switched off stays off when its trigger is there
    off = LoraSpec("a.safetensors", trigger="zq", enabled=False)
    assert scope_to_prompt([off], "a zq")[0].enabled is False


def test_a_lora_with_no_known_trigger_stays_on_for_every_prompt(lora) -> None:
    assert lora_triggers(LoraSpec(str(lora))) == ()
    assert scope_to_prompt([LoraSpec(str(lora))], "a red circle")[0].enabled


def test_the_trigger_comes_from_the_files_metadata(lora, tmp_path) -> None:
    tagged = _with_trigger_metadata(lora, tmp_path / "tagged.safetensors", "zq, purple zq")
    assert lora_triggers(LoraSpec(str(tagged))) == ("zq", "purple zq")
    # the stack entry's own word wins over the file's
    assert lora_triggers(LoraSpec(str(tagged), trigger="mine")) == ("mine",)


def test_the_trigger_comes_from_the_run_a_lora_belongs_to(lora, tmp_path) -> None:
    run = _run_folder(tmp_path, lora, ["a purple zq on a black background", "a purple zq on a white background"])
    assert run_trigger(run) == "zq"
    for path in (run, run / "outputs" / "lora-diffusers" / lora.name):
        assert lora_triggers(LoraSpec(str(path))) == ("zq",), path
    # captions with no common new word: no trigger, always on
    other = _run_folder(tmp_path / "b", lora, ["a pink circle on a black background", "a pink square on a gray one"])
    assert lora_triggers(LoraSpec(str(other))) == ()


def test_the_datasets_own_trigger_word_wins_over_the_captions(lora, tmp_path) -> None:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "manifest.json").write_text('{"trigger": "hgz"}', encoding="utf-8")
    run = _run_folder(tmp_path, lora, ["a hgz star", "a hgz star on white"], source=str(dataset))
    assert run_trigger(run) == "hgz"


def _image(engine, model, prompt, **extra) -> np.ndarray:
    settings = GenerationSettings(prompt=prompt, steps=2, seed=3, model=str(model), **extra)
    return np.asarray(engine.generate(settings)[0].image, dtype=float)


@pytest.mark.parametrize("fuse", [False, True])
def test_scoped_stacking_draws_the_base_image_for_a_prompt_without_the_trigger(engine, sd1_dir, lora, fuse) -> None:
    loras = [{"path": str(lora), "weight": 1.0, "trigger": "zq"}]
    for prompt in ("a red circle", "a zq"):
        base = _image(engine, sd1_dir, prompt)
        summed = _image(engine, sd1_dir, prompt, loras=loras, stacking="sum", fuse=fuse)
        scoped = _image(engine, sd1_dir, prompt, loras=loras, fuse=fuse)  # scoped is the default
        assert np.abs(summed - base).mean() > 1, "the LoRA changes the image when it is on"
        if prompt == "a red circle":
            assert np.array_equal(scoped, base)  # off: exactly the base model
        else:
            assert np.array_equal(scoped, summed)  # on: exactly the plain stack


def test_stacking_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="stacking must be one of composite, scoped, sum"):
        GenerationSettings(prompt="x", stacking="zip")
    with pytest.raises(ValueError, match="trigger"):
        LoraSpec("a.safetensors", trigger="two\nlines")


@pytest.fixture(scope="module")
def second_lora(tmp_path_factory, sd1_dir):
    return write_lora(sd1_dir, tmp_path_factory.mktemp("lora2"), seed=2, convolutions=True)[0]


def test_composite_averages_what_each_lora_predicts_alone(engine, sd1_dir, lora, second_lora) -> None:
    from studio.generate.composite import composite_unet

    pipe = engine.load(str(sd1_dir)).pipe
    loras = [{"path": str(lora), "weight": 1.0}, {"path": str(second_lora), "weight": 0.7}]
    settings = GenerationSettings(prompt="a zq", steps=2, model=str(sd1_dir), loras=loras, stacking="sum")
    engine.prepare(settings)
    stack = engine.adapters(pipe)
    names = [stack.adapter_name(pipe, LoraSpec.from_dict(entry)) for entry in loras]
    torch.manual_seed(0)
    sample = torch.randn(2, pipe.unet.config.in_channels, 8, 8)
    text = torch.randn(2, 77, pipe.unet.config.cross_attention_dim)

    def predict() -> torch.Tensor:
        with torch.no_grad():
            return pipe.unet(sample, 10, encoder_hidden_states=text, return_dict=False)[0]

    summed = predict()
    alone = []
    for name, weight in zip(names, (1.0, 0.7)):
        pipe.unet.set_adapters([name], weights=[weight])
        alone.append(predict())
    pipe.unet.set_adapters(names, weights=[1.0, 0.7])
    with composite_unet(pipe, list(zip(names, (1.0, 0.7))), lambda name: None):
        composed = predict()
        assert torch.allclose(pipe.unet(sample, 10, encoder_hidden_states=text).sample, composed)
    assert torch.allclose(composed, (alone[0] + alone[1]) / 2, atol=1e-6)
    assert not torch.allclose(composed, summed, atol=1e-3)
    assert torch.equal(predict(), summed)  # afterwards the stack is the plain sum again


def test_composite_with_one_lora_on_is_that_lora_and_leaves_the_stack_as_it_was(
    engine, sd1_dir, lora, second_lora
) -> None:
    loras = [{"path": str(lora), "weight": 1.0, "trigger": "zq"}, {"path": str(second_lora), "trigger": "vx"}]
    one = _image(engine, sd1_dir, "a zq", loras=loras, stacking="composite")
    assert np.array_equal(one, _image(engine, sd1_dir, "a zq", loras=loras[:1], stacking="sum"))
    both_summed = _image(engine, sd1_dir, "a zq and a vx", loras=loras, stacking="scoped")
    both_composed = _image(engine, sd1_dir, "a zq and a vx", loras=loras, stacking="composite", fuse=True)
    assert np.abs(both_composed - both_summed).mean() > 0.5
    assert np.array_equal(_image(engine, sd1_dir, "a zq and a vx", loras=loras, stacking="scoped"), both_summed)


def test_stacked_vs_each_alone_in_one_grid(engine, sd1_dir, lora, second_lora) -> None:
    from studio.generate.grid import Axis, render_grid, stack_axis

    loras = [{"path": str(lora), "weight": 1.0}, {"path": str(second_lora), "weight": 0.8}]
    base = GenerationSettings(prompt="a red circle", steps=2, seed=3, model=str(sd1_dir), loras=loras)
    axis = stack_axis(loras, names=["star", "pink"])
    assert axis.labels == ("stacked", "star alone", "pink alone", "no LoRA")
    grid = render_grid(engine, base, axis)
    cells = [np.asarray(image, dtype=float) for image in grid.images]
    expected = [
        _image(engine, sd1_dir, "a red circle", loras=loras),
        _image(engine, sd1_dir, "a red circle", loras=loras[:1]),
        _image(engine, sd1_dir, "a red circle", loras=loras[1:]),
        _image(engine, sd1_dir, "a red circle"),
    ]
    for label, cell, want in zip(axis.labels, cells, expected):
        assert np.array_equal(cell, want), label
    # the CLI's spelling: LoRAs numbered from 1, as the Playground's slots
    assert Axis.parse("stack=all,2,none").values == ("all", 1, "none")
    with pytest.raises(ValueError, match="stack has 2"):
        render_grid(engine, base, Axis.parse("stack=3"))
    with pytest.raises(ValueError, match="unknown stacking mode"):
        Axis.parse("stacking=zip")


def test_the_compare_tabs_stacked_vs_alone_axis_names_each_lora() -> None:
    from studio.ui.compare_form import stacked_vs_alone

    loras = [
        {"path": "/x/star.safetensors"},
        {"path": "/x/pink.safetensors", "enabled": False},  # switched off: never drawn alone
        {"path": "/x/heart.safetensors"},
    ]
    axis = stacked_vs_alone(loras)
    assert axis.values == ("all", 0, 2, "none")
    assert axis.labels == ("stacked", "star alone", "heart alone", "no LoRA")
    assert stacked_vs_alone(loras, "all, 3").labels == ("stacked", "heart alone")
    with pytest.raises(ValueError, match="names LoRA 2"):
        stacked_vs_alone(loras, "2")
    with pytest.raises(ValueError, match="needs LoRAs in the base settings"):
        stacked_vs_alone([])
