"""The scorecard on real pocket DreamBooth runs: prior preservation shows, an overfitted run is flagged.

The subject is a blue star (a shape the pocket model never saw) under "a sks diamond on a black background",
the class prompt "a diamond on a black background": the DreamBooth setup of "a photo of sks dog" / "a photo
of a dog" in the shapes world, so the evaluator can say exactly what drifted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.paths import POCKET_MODEL_DIR

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (POCKET_MODEL_DIR / "model_index.json").is_file(), reason="the pocket model is not built"),
]

PLACES = [(0.5, 0.5, 0.6), (0.4, 0.45, 0.55), (0.6, 0.55, 0.6), (0.45, 0.6, 0.5), (0.55, 0.4, 0.65)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """Three runs: a good one (prior preservation), the same without it, and one at 10x the LR."""
    import os

    from studio.pocket.world import Scene, render
    from studio.train.config import resolve_config
    from studio.train.start import create_run, run_training

    data = tmp_path_factory.mktemp("blue-star")
    for index, (cx, cy, size) in enumerate(PLACES):
        render(Scene("star", "blue", "black", cx, cy, size), 64).save(data / f"star{index}.png")
        (data / f"star{index}.txt").write_text("a sks diamond on a black background", encoding="utf-8")
    common = {
        "trigger": "sks",
        "instance_prompt": "a sks diamond on a black background",
        "class_prompt": "a diamond on a black background",
        "num_class_images": "8",
        "sample_every": "0",
        "keep_checkpoints": "4",
    }
    variants = {
        "good": {"steps": "120", "checkpoint_every": "60", "learning_rate": "2e-4"},
        "no_prior": {"steps": "120", "checkpoint_every": "60", "learning_rate": "2e-4"},
        "overfitted": {"steps": "100", "checkpoint_every": "50", "learning_rate": "2e-3"},
    }
    variants["no_prior"]["with_prior_preservation"] = variants["overfitted"]["with_prior_preservation"] = "false"
    root = tmp_path_factory.mktemp("runs")
    data_dir = os.environ.get("STUDIO_DATA_DIR")
    os.environ["STUDIO_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))  # the class images land here
    try:
        out = {}
        for name, settings in variants.items():
            run_dir = create_run(resolve_config("dreambooth-pocket", overrides=common | settings), data, root=root)
            assert run_training(run_dir, export=False) == "finished"
            out[name] = run_dir
        return out
    finally:
        if data_dir is None:
            os.environ.pop("STUDIO_DATA_DIR", None)
        else:
            os.environ["STUDIO_DATA_DIR"] = data_dir


@pytest.fixture(scope="module")
def cards(trained) -> dict[str, dict]:
    from studio.evaluate.render import checkpoint_steps
    from studio.evaluate.scorecard import evaluate_run

    return {
        name: evaluate_run(run_dir, checkpoint=checkpoint_steps(run_dir)[-1], seeds=4, steps=10).to_dict()
        for name, run_dir in trained.items()
    }


def test_prior_preservation_keeps_prompts_without_the_trigger_closer_to_the_base_model(cards) -> None:
    good, no_prior = cards["good"]["checkpoints"][-1], cards["no_prior"]["checkpoints"][-1]
    assert cards["good"]["subject"]["evaluator_sees"] == {"shape": "star", "color": "blue", "background": "black"}
    figures = {
        name: (c["prior_preservation"], c["prior_pixel_distance"]) for name, c in (("good", good), ("no", no_prior))
    }
    # the pixel distance to the base model's images separates the two (2026-11-23: 0.13 vs 0.18); the evaluator's
    # verdicts agreed equally often at this length (12 of 24 each), so that figure must only not be worse
    assert good["prior_pixel_distance"] < no_prior["prior_pixel_distance"], figures
    assert good["prior_preservation"] >= no_prior["prior_preservation"], figures


def test_an_overfitted_run_is_flagged_and_a_good_run_is_not(cards) -> None:
    assert cards["overfitted"]["overfitting"]["flagged"], cards["overfitted"]["overfitting"]
    assert "held-out fidelity fell" in cards["overfitted"]["overfitting"]["reason"]
    assert not cards["good"]["overfitting"]["flagged"], cards["good"]["overfitting"]
