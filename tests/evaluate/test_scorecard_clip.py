"""The real-model path: CLIP-I / CLIP-T / DINO from folders, on a LoRA run of the tiny SD1 pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.evaluate.scorecard import evaluate_run

SIDE = 32


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory, tiny_tokenizer) -> Path:
    """A random CLIP model with its processor, saved like a hub snapshot (built from configs, nothing downloaded)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    config = CLIPConfig(
        text_config={
            "vocab_size": len(tiny_tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "bos_token_id": tiny_tokenizer.bos_token_id,
            "eos_token_id": tiny_tokenizer.eos_token_id,
            "pad_token_id": tiny_tokenizer.pad_token_id,
        },
        vision_config={
            "image_size": SIDE,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
        projection_dim=16,
    )
    folder = tmp_path_factory.mktemp("tiny-clip")
    CLIPModel(config).save_pretrained(folder)
    images = CLIPImageProcessor(size={"shortest_edge": SIDE}, crop_size={"height": SIDE, "width": SIDE})
    CLIPProcessor(image_processor=images, tokenizer=tiny_tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_dino(tmp_path_factory) -> Path:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("tiny-dino")
    config = ViTConfig(
        image_size=SIDE, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(folder)
    ViTImageProcessor(size={"height": SIDE, "width": SIDE}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, sd1_dir) -> Path:
    """Two LoRA steps on the tiny SD1 pipeline, a checkpoint after each; captions carry the trigger 'zq'."""
    from studio.pocket.world import Scene, render
    from studio.train.config import resolve_config
    from studio.train.start import create_run, run_training

    data = tmp_path_factory.mktemp("zq")
    for index, (shape, background) in enumerate([("star", "black"), ("star", "white")]):
        render(Scene(shape, "blue", background), SIDE).save(data / f"zq{index}.png")
        (data / f"zq{index}.txt").write_text(f"a zq on a {background} background", encoding="utf-8")
    settings = {"base_model": str(sd1_dir), "device": "cpu", "resolution": SIDE, "steps": 2, "rank": 4}
    settings |= {"checkpoint_every": 1, "keep_checkpoints": 2, "sample_steps": 2, "learning_rate": 1e-2}
    config = resolve_config(overrides={k: str(v) for k, v in settings.items()})
    run_dir = create_run(config, data, root=tmp_path_factory.mktemp("runs"))
    assert run_training(run_dir, export=False) == "finished"
    return run_dir


def test_real_model_scores_are_clip_and_dino_similarities(lora_run, tiny_clip, tiny_dino) -> None:
    card = evaluate_run(lora_run, seeds=1, clip_model=tiny_clip, dino_model=tiny_dino).to_dict()
    assert card["judge"] == "clip" and card["subject"]["trigger"] == "zq"
    assert [s["step"] for s in card["checkpoints"]] == [0, 1, 2]
    base, *trained = card["checkpoints"]
    # the base model against itself at the same seeds: identical images
    assert base["prior_preservation"] == pytest.approx(1.0, abs=1e-4) and base["prior_pixel_distance"] == 0.0
    for scores in trained:
        for name in ("clip_i", "clip_t", "dino", "prior_clip_i", "prior_dino"):
            assert -1.0 <= scores["details"][name] <= 1.0
        assert scores["subject_fidelity"] == scores["details"]["dino"]  # DINO is preferred when given
    assert trained[-1]["prior_pixel_distance"] > 0  # a LoRA at lr 1e-2 moved the images
    assert (lora_run / "eval" / "scorecard.json").is_file()


def test_real_model_without_clip_or_with_an_absent_one_says_what_to_pass(lora_run) -> None:
    with pytest.raises(ValueError, match="pass a CLIP model"):
        evaluate_run(lora_run, checkpoint=2, seeds=1, save=False)
    with pytest.raises(ValueError, match="cannot load the CLIP model 'nobody/no-such-clip'"):
        evaluate_run(lora_run, checkpoint=2, seeds=1, clip_model="nobody/no-such-clip", save=False)
    with pytest.raises(ValueError, match="no checkpoint at step 7"):
        evaluate_run(lora_run, checkpoint=7, seeds=1, save=False)


def test_scoring_renders_with_the_lora_merged_and_puts_the_base_weights_back_exactly(lora_run) -> None:
    """Merged for speed, the images are the adapter's images, and the next checkpoint starts from the same base."""
    import numpy as np
    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer

    from studio.evaluate.prompts import EvalPrompt
    from studio.evaluate.render import (
        _render,
        checkpoint_folder,
        load_checkpoint_weights,
        load_run_pipeline,
        merged_adapters,
        render_prompts,
    )

    run = load_run_pipeline(lora_run, steps=2)
    load_checkpoint_weights(run, checkpoint_folder(lora_run, 2))
    layers = [m for m in run.pipe.unet.modules() if isinstance(m, BaseTunerLayer)]
    before = {id(m): m.get_base_layer().weight.detach().clone() for m in layers}
    prompts = [EvalPrompt("trained", "a zq on a black background", seed, "a star") for seed in (0, 1)]
    unmerged = [np.asarray(image, dtype=np.int16) for image in _render(run, prompts, 6.0)]
    with merged_adapters(run.pipe) as count:
        assert count == len(layers) > 0 and all(m.merged for m in layers)
        assert any(not torch.equal(m.get_base_layer().weight, before[id(m)]) for m in layers)  # the LoRA is in
    merged = [np.asarray(image, dtype=np.int16) for image in render_prompts(run, prompts)]
    assert max(int(np.abs(a - b).max()) for a, b in zip(unmerged, merged)) <= 2  # rounding, not another model
    assert not any(m.merged for m in layers)
    assert all(torch.equal(m.get_base_layer().weight, before[id(m)]) for m in layers)  # bit for bit
