"""The shipped pocket model: standard diffusers format, and as good as its model card says."""

from __future__ import annotations

import json

import pytest
import torch

from studio.paths import POCKET_MODEL_DIR
from studio.pocket import world
from studio.pocket.evaluator import judge
from studio.pocket.quality import measure

# A sample of half the base combinations at one seed (48 images): its joint
# accuracy has a standard error of ~4.5 points around the card's figure, so a
# sample more than 15 points below the card (over 3 standard errors) is a
# real regression, not bad luck.
TOLERANCE = 0.15


@pytest.fixture(scope="module")
def pipe():
    from diffusers import StableDiffusionPipeline

    # no studio code on the loading path: any diffusers user can do this
    pipe = StableDiffusionPipeline.from_pretrained(POCKET_MODEL_DIR, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def card():
    return json.loads((POCKET_MODEL_DIR / "metrics.json").read_text())


def test_it_is_a_plain_stable_diffusion_pipeline(pipe):
    from transformers import CLIPTokenizer

    assert type(pipe).__name__ == "StableDiffusionPipeline"
    assert pipe.vae_scale_factor == 4 and pipe.unet.config.sample_size == 16
    # CLIP's own file pair is shipped too, for tools that read only those
    slow = CLIPTokenizer.from_pretrained(POCKET_MODEL_DIR / "tokenizer")
    assert slow("a red circle").input_ids == pipe.tokenizer("a red circle").input_ids
    for weights in POCKET_MODEL_DIR.glob("*/*"):
        assert weights.suffix not in {".bin", ".ckpt", ".pt"}, weights


def test_the_card_meets_the_quality_bar(card):
    assert card["joint_accuracy"] >= 0.9
    assert card["images"] >= 96 * 4


def test_a_sample_reproduces_the_cards_accuracy(pipe, card):
    report = measure(pipe, world.base_combinations()[::2], seeds=(7,), steps=card["steps"], guidance=card["guidance"])
    assert report.rate() >= card["joint_accuracy"] - TOLERANCE, report.misses


def test_the_readme_prompt(pipe):
    generators = [torch.Generator().manual_seed(s) for s in range(4)]
    images = pipe(
        ["a yellow triangle on a black background"] * 4,
        num_inference_steps=25,
        guidance_scale=6.0,
        generator=generators,
    ).images
    assert images[0].size == (64, 64)
    assert sum(judge(im).matches("triangle", "yellow", "black") for im in images) >= 3


def test_prompts_written_another_way_or_with_a_made_up_word_draw_what_they_ask_for(pipe, card):
    """Issue 17: a trigger word (any word outside a template) must not throw off the words after it. Four base
    prompts per phrasing, judged on shape, colour and background."""
    from studio.pocket.concept import judge_probes, phrasing_probes, pipeline_drawer

    figures = judge_probes(pipeline_drawer(pipe, steps=card["steps"]), phrasing_probes(per_style=4, seed=11))
    rates = {name: figures.rate(name) for name in figures.totals}
    assert sum(rates.values()) / len(rates) >= 0.8, figures.as_dict()
    assert min(rates.values()) >= 0.5, figures.as_dict()
