"""Stacked LoRAs and embeddings on the tiny SD1 pipeline: weights, toggles, fusing, file formats, safety."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch
from lora_factory import write_lora

from studio.adapters.stack import LoraSpec
from studio.generate import GenerationEngine, GenerationSettings


@pytest.fixture(scope="module")
def lora_a(tmp_path_factory, sd1_dir):
    return write_lora(sd1_dir, tmp_path_factory.mktemp("lora-a"), seed=1)


@pytest.fixture(scope="module")
def lora_b(tmp_path_factory, sd1_dir):
    return write_lora(sd1_dir, tmp_path_factory.mktemp("lora-b"), seed=2, text_encoder=True, convolutions=True)


@pytest.fixture(scope="module")
def engine():
    torch.set_num_threads(1)
    return GenerationEngine(device="cpu")


def _image(engine, model, prompt="a red circle", **extra) -> np.ndarray:
    settings = GenerationSettings(prompt=prompt, steps=2, seed=3, model=str(model), **extra)
    return np.asarray(engine.generate(settings)[0].image, dtype=float)


def _loras(*pairs, **extra) -> list[dict]:
    return [{"path": str(path), "weight": weight} | extra for path, weight in pairs]


def _stack(engine, model):
    return engine.adapters(engine.load(str(model)).pipe)


def test_weight_zero_is_the_base_and_the_effect_grows_with_the_weight(engine, sd1_dir, lora_a) -> None:
    base = _image(engine, sd1_dir)
    assert np.array_equal(_image(engine, sd1_dir, loras=_loras((lora_a[0], 0.0))), base)
    change = [np.abs(_image(engine, sd1_dir, loras=_loras((lora_a[0], w))) - base).mean() for w in (0.5, 1.0, 2.0)]
    assert 0 < change[0] < change[1] < change[2], change
    negative = _image(engine, sd1_dir, loras=_loras((lora_a[0], -1.0)))
    assert np.abs(negative - base).mean() > 0 and not np.array_equal(negative, _image(engine, sd1_dir))


def test_a_second_adapter_at_zero_leaves_the_first_alone(engine, sd1_dir, lora_a, lora_b) -> None:
    alone = _image(engine, sd1_dir, loras=_loras((lora_a[0], 0.8)))
    assert np.array_equal(_image(engine, sd1_dir, loras=_loras((lora_a[0], 0.8), (lora_b[0], 0.0))), alone)


def test_loading_a_second_adapter_keeps_the_first_active(engine, sd1_dir, lora_a, lora_b) -> None:
    only_b = _image(engine, sd1_dir, loras=_loras((lora_b[0], 1.0)))
    both = _image(engine, sd1_dir, loras=_loras((lora_b[0], 1.0), (lora_a[0], 1.0)))
    pipe = engine.load(str(sd1_dir)).pipe
    assert len(pipe.get_active_adapters()) == 2
    assert np.abs(both - only_b).mean() > 1.0


def test_toggling_and_reweighting_never_reload_anything(engine, sd1_dir, lora_a, lora_b) -> None:
    base = _image(engine, sd1_dir)
    loads_before = engine.cache.loads
    _image(engine, sd1_dir, loras=_loras((lora_a[0], 1.0), (lora_b[0], 1.0)))
    lora_loads = _stack(engine, sd1_dir).lora_loads
    off = _image(engine, sd1_dir, loras=_loras((lora_a[0], 1.0), (lora_b[0], 1.0), enabled=False))
    assert np.array_equal(off, base)  # off means no effect, though both stay loaded
    assert len(engine.load(str(sd1_dir)).pipe.get_list_adapters()["unet"]) == 2
    _image(engine, sd1_dir, loras=_loras((lora_a[0], 0.3), (lora_b[0], -0.5)))
    assert _stack(engine, sd1_dir).lora_loads == lora_loads
    assert engine.cache.loads == loads_before


def test_fused_matches_unfused_and_unfuses_when_the_mix_changes(engine, sd1_dir, lora_a, lora_b) -> None:
    mix = _loras((lora_a[0], 1.0), (lora_b[0], 0.7))
    unfused = _image(engine, sd1_dir, loras=mix)
    stack = _stack(engine, sd1_dir)
    fuses = stack.fuses
    fused = _image(engine, sd1_dir, loras=mix, fuse=True)
    again = _image(engine, sd1_dir, loras=mix, fuse=True)
    assert stack.fuses == fuses + 1 and stack.fused is not None  # the same mix stays fused: merged once
    assert np.abs(fused - unfused).max() <= 2 and np.array_equal(fused, again)

    changed = _loras((lora_a[0], 0.4), (lora_b[0], 0.7))
    refused = _image(engine, sd1_dir, loras=changed, fuse=True)
    assert stack.fuses == fuses + 2
    assert np.abs(refused - _image(engine, sd1_dir, loras=changed)).max() <= 2
    assert stack.fused is None  # the plain call unfused
    # unfusing restores the base weights (up to float rounding)
    assert np.abs(_image(engine, sd1_dir) - _image(engine, sd1_dir, loras=_loras((lora_a[0], 0.0)))).max() <= 1


def test_kohya_and_diffusers_files_of_one_lora_give_the_same_image(engine, sd1_dir, lora_b) -> None:
    diffusers_image = _image(engine, sd1_dir, loras=_loras((lora_b[0], 1.0)))
    kohya_image = _image(engine, sd1_dir, loras=_loras((lora_b[1], 1.0)))
    assert np.abs(diffusers_image - kohya_image).max() <= 1
    assert np.abs(diffusers_image - _image(engine, sd1_dir)).mean() > 1.0


def test_a_diffusers_file_mixing_old_and_peft_keys_loads_whole(engine, sd1_dir, lora_b, tmp_path) -> None:
    """What diffusers' convert_state_dict_to_diffusers wrote for attention + convolution LoRAs (and our exporter
    before it was fixed): old `lora.down` attention keys beside peft `lora_A` convolution keys."""
    import re

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(lora_b[0]), "pt") as stream:
        metadata = stream.metadata()
        old_style = re.compile(r"^(unet\..*\.(to_q|to_k|to_v|to_out\.0))\.lora_([AB])\.")
        tensors = {
            old_style.sub(
                lambda m: f"{m.group(1)}.lora.{'down' if m.group(3) == 'A' else 'up'}.", key
            ): stream.get_tensor(key)
            for key in stream.keys()
        }
    assert any(".lora.down." in k for k in tensors) and any(".lora_A." in k for k in tensors)
    save_file(tensors, str(tmp_path / "mixed.safetensors"), metadata=metadata)
    mixed = _image(engine, sd1_dir, loras=_loras((tmp_path / "mixed.safetensors", 1.0)))
    assert np.abs(mixed - _image(engine, sd1_dir, loras=_loras((lora_b[1], 1.0)))).max() <= 1


@pytest.fixture(scope="module")
def lora_everywhere(tmp_path_factory, sd1_dir):
    """Attention, every resnet convolution (also in the down block without attention) and conv_in / conv_out: the
    pocket preset's kind of LoRA."""
    return write_lora(sd1_dir, tmp_path_factory.mktemp("lora-all"), seed=5, convolutions=True, outer=True)[0]


def test_per_block_weights(engine, sd1_dir, lora_a) -> None:
    plain = _image(engine, sd1_dir, loras=_loras((lora_a[0], 1.0)))
    all_one = _image(engine, sd1_dir, loras=_loras((lora_a[0], 1.0), blocks={"down": 1, "mid": 1, "up": 1}))
    assert np.array_equal(plain, all_one)
    none = _image(engine, sd1_dir, loras=_loras((lora_a[0], 1.0), blocks={"down": 0, "mid": 0, "up": 0}))
    assert np.array_equal(none, _image(engine, sd1_dir))
    up_only = _image(engine, sd1_dir, loras=_loras((lora_a[0], 1.0), blocks={"down": 0, "mid": 0}))
    assert not np.array_equal(up_only, plain) and not np.array_equal(up_only, none)


def test_per_block_weights_cover_every_layer_of_a_block_and_leave_the_outer_layers(engine, sd1_dir, lora_everywhere):
    base = _image(engine, sd1_dir)
    plain = _image(engine, sd1_dir, loras=_loras((lora_everywhere, 1.0)))
    zero = {"down": 0, "mid": 0, "up": 0}
    assert np.array_equal(
        plain, _image(engine, sd1_dir, loras=_loras((lora_everywhere, 1.0), blocks=dict.fromkeys(zero, 1)))
    )
    outer_only = _image(engine, sd1_dir, loras=_loras((lora_everywhere, 1.0), blocks=zero))
    assert not np.array_equal(outer_only, base) and not np.array_equal(outer_only, plain)  # conv_in/out keep weight 1
    # what is left: the plain weight on conv_in / conv_out, nothing on any layer inside a block
    stack = _stack(engine, sd1_dir)
    (name,) = stack.loras.values()
    unet = engine.load(str(sd1_dir)).pipe.unet
    scales = {
        n: m.scaling[name] / (m.lora_alpha[name] / m.r[name])
        for n, m in unet.named_modules()
        if hasattr(m, "scaling") and name in m.scaling
    }
    assert {n: s for n, s in scales.items() if s != 0} == {"conv_in": 1.0, "conv_out": 1.0}
    assert any(n.startswith("down_blocks.0.resnets") for n in scales)  # the down block without attention, zeroed too


def test_pickle_lora_is_refused_unless_allowed_and_then_loads_tensors_only(tmp_path, sd1_dir, lora_a) -> None:
    from safetensors.torch import load_file

    pickle_file = tmp_path / "lora.bin"
    torch.save(load_file(str(lora_a[1])), pickle_file)
    with pytest.raises(ValueError, match="pickle"):
        _image(GenerationEngine(device="cpu"), sd1_dir, loras=_loras((pickle_file, 1.0)))
    trusting = GenerationEngine(device="cpu", allow_pickle_adapters=True)
    from_pickle = _image(trusting, sd1_dir, loras=_loras((pickle_file, 1.0)))
    assert np.abs(from_pickle - _image(trusting, sd1_dir, loras=_loras((lora_a[1], 1.0)))).max() <= 1

    from fractions import Fraction  # any class that is not a tensor container: weights_only refuses to build it

    torch.save({"x": Fraction(1, 3)}, tmp_path / "code.bin")
    with pytest.raises(Exception, match="(?i)weights.only|unsupported"):
        _image(trusting, sd1_dir, loras=_loras((tmp_path / "code.bin", 1.0)))


def test_switching_the_base_model_releases_it_with_its_adapters(sd1_dir, sd2_dir, lora_a) -> None:
    engine = GenerationEngine(device="cpu")
    _image(engine, sd1_dir, loras=_loras((lora_a[0], 1.0)))
    first = weakref.ref(engine.load(str(sd1_dir)).pipe)
    _image(engine, sd2_dir)
    import gc

    gc.collect()
    assert first() is None and engine.cache.loads == 2


def test_embeddings_load_by_token_and_unload_every_sub_token(engine, sd1_dir, tmp_path) -> None:
    from safetensors.torch import save_file

    pipe = engine.load(str(sd1_dir)).pipe
    vocab, rows = len(pipe.tokenizer), pipe.text_encoder.get_input_embeddings().weight.shape[0]
    added = set(pipe.tokenizer.get_added_vocab())  # the special tokens
    torch.manual_seed(0)
    save_file({"<zq>": torch.randn(3, 32)}, str(tmp_path / "learned_embeds.safetensors"))  # diffusers, 3 vectors
    save_file({"emb_params": torch.randn(2, 32)}, str(tmp_path / "wobbly.safetensors"))  # A1111: name = token
    embeddings = [
        {"path": str(tmp_path / "learned_embeds.safetensors")},
        {"path": str(tmp_path / "wobbly.safetensors")},
    ]

    plain = _image(engine, sd1_dir, prompt="a red circle")
    with_tokens = _image(engine, sd1_dir, prompt="a <zq> wobbly circle", embeddings=embeddings)
    assert len(pipe.tokenizer) == vocab + 5
    assert set(pipe.tokenizer.get_added_vocab()) - added == {"<zq>", "<zq>_1", "<zq>_2", "wobbly", "wobbly_1"}
    assert not np.array_equal(with_tokens, plain)

    _image(engine, sd1_dir, embeddings=embeddings[1:])  # drop the first: all three of its tokens go
    assert set(pipe.tokenizer.get_added_vocab()) - added == {"wobbly", "wobbly_1"}
    _image(engine, sd1_dir)
    assert len(pipe.tokenizer) == vocab and pipe.text_encoder.get_input_embeddings().weight.shape[0] == rows


@pytest.mark.parametrize(
    "layout",
    [
        "lcm-lora-tiny.safetensors",  # a file named as the community names them
        "LCM_LoRA_SD15.safetensors",  # kohya / A1111 style, upper case
        "lcm-lora-sdv1-5/pytorch_lora_weights.safetensors",  # a diffusers folder
        "models--latent-consistency--lcm-lora-sdv1-5/snapshots/0123abcd/pytorch_lora_weights.safetensors",  # hub
    ],
)
def test_lcm_lora_switches_to_the_lcm_sampler(engine, sd1_dir, lora_a, tmp_path, layout) -> None:
    import shutil

    lcm = tmp_path / layout
    lcm.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(lora_a[0], lcm)
    source = lcm.parent if layout.startswith("lcm-lora-sdv1-5/") else lcm
    settings = GenerationSettings(prompt="a red circle", steps=2, model=str(sd1_dir), loras=_loras((source, 1.0)))
    result = engine.generate(settings)[0]
    assert result.params["sampler"] == "lcm"
    assert type(engine.load(str(sd1_dir)).pipe.scheduler).__name__ == "LCMScheduler"


def test_lcm_detection_leaves_other_loras_and_explicit_samplers_alone(engine, sd1_dir, lora_a, tmp_path) -> None:
    import shutil

    # "calm" holds no "lcm"; pytest's tmp_path (test_lcm_detection…) does, and must not count
    plain = tmp_path / "calm-style" / "pytorch_lora_weights.safetensors"
    plain.parent.mkdir()
    shutil.copy(lora_a[0], plain)
    settings = GenerationSettings(prompt="a red circle", steps=2, model=str(sd1_dir), loras=_loras((plain.parent, 1)))
    assert engine.generate(settings)[0].params["sampler"] == "default"
    lcm = tmp_path / "lcm-lora.safetensors"
    shutil.copy(lora_a[0], lcm)
    chosen = GenerationSettings(
        prompt="a red circle", steps=2, model=str(sd1_dir), sampler="euler", loras=_loras((lcm, 1.0))
    )
    assert engine.generate(chosen)[0].params["sampler"] == "euler"  # the user's explicit choice wins


def test_specs_parse_and_refuse_bad_values() -> None:
    assert LoraSpec.parse("runs/x/lora.safetensors:0.5") == LoraSpec("runs/x/lora.safetensors", 0.5)
    assert LoraSpec.parse("C:/loras/a.safetensors") == LoraSpec("C:/loras/a.safetensors", 1.0)
    assert LoraSpec.parse("a.safetensors:-1").weight == -1.0
    with pytest.raises(ValueError, match="between"):
        LoraSpec("a.safetensors", weight=9)
    with pytest.raises(ValueError, match="block"):
        LoraSpec("a.safetensors", blocks={"middle": 1})
    with pytest.raises(ValueError, match="unknown LoRA setting"):
        GenerationSettings(prompt="x", loras=[{"path": "a", "wieght": 1}])


def test_missing_or_non_lora_paths_fail_clearly(engine, sd1_dir, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no LoRA"):
        _image(engine, sd1_dir, loras=_loras((tmp_path / "nope.safetensors", 1.0)))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="safetensors"):
        _image(engine, sd1_dir, loras=_loras((tmp_path / "notes.txt", 1.0)))


def test_a_merged_mix_draws_what_the_stack_draws(engine, sd1_dir, lora_a, lora_b, tmp_path) -> None:
    from safetensors import safe_open

    from studio.cli import main

    mix = [
        {"path": str(lora_a[0]), "weight": 0.8, "blocks": {"down": 0.5}},
        {"path": str(lora_b[1]), "weight": -0.6},  # kohya, with a text-encoder part
        {"path": str(lora_a[1]), "weight": 1.0, "enabled": False},  # off: not part of the mix
    ]
    stacked = _image(engine, sd1_dir, loras=mix)
    assert np.abs(stacked - _image(engine, sd1_dir)).mean() > 1.0
    out = tmp_path / "mix.safetensors"
    assert (
        main(
            ["merge-lora", "--model", str(sd1_dir), "--out", str(out)]
            + [f"--lora={m['path']}:{m['weight']}" for m in mix[:2]]
        )
        == 0
    )  # the CLI has no per-block weights: compare its file with the stack without them below
    from studio.generate.mix import save_mix

    save_mix(engine, str(sd1_dir), [LoraSpec.from_dict(m) for m in mix], tmp_path / "mix-blocks.safetensors")
    merged = _image(engine, sd1_dir, loras=_loras((tmp_path / "mix-blocks.safetensors", 1.0)))
    assert np.abs(merged - stacked).max() <= 2
    with safe_open(str(tmp_path / "mix-blocks.safetensors"), "pt") as stream:
        assert any(k.startswith("lora_te_text_model_") for k in stream.keys())  # sd-scripts' SD 1.x name

    plain_stack = _image(engine, sd1_dir, loras=[m | {"blocks": None} for m in mix])
    assert np.abs(_image(engine, sd1_dir, loras=_loras((out, 1.0))) - plain_stack).max() <= 2
    with pytest.raises(ValueError, match="switched on"):
        save_mix(engine, str(sd1_dir), [LoraSpec(str(lora_a[0]), enabled=False)], tmp_path / "none.safetensors")


def test_sdxl_embeddings_load_into_both_text_encoders_and_unload(sdxl_dir, sd1_dir, tmp_path) -> None:
    from safetensors.torch import save_file

    engine = GenerationEngine(device="cpu")
    pipe = engine.load(str(sdxl_dir)).pipe
    sizes = [len(pipe.tokenizer), len(pipe.tokenizer_2)]
    torch.manual_seed(0)
    save_file({"clip_l": torch.randn(2, 16), "clip_g": torch.randn(2, 16)}, str(tmp_path / "shiny.safetensors"))
    plain = _image(engine, sdxl_dir, prompt="a shiny circle")
    shiny = _image(
        engine, sdxl_dir, prompt="a shiny circle", embeddings=[{"path": str(tmp_path / "shiny.safetensors")}]
    )
    assert [len(pipe.tokenizer), len(pipe.tokenizer_2)] == [s + 2 for s in sizes]
    assert not np.array_equal(plain, shiny)
    _image(engine, sdxl_dir)
    assert [len(pipe.tokenizer), len(pipe.tokenizer_2)] == sizes
    assert pipe.text_encoder_2.get_input_embeddings().weight.shape[0] == sizes[1]
    with pytest.raises(ValueError, match="SDXL"):
        _image(GenerationEngine(device="cpu"), sd1_dir, embeddings=[{"path": str(tmp_path / "shiny.safetensors")}])
