"""Reading scorecards without rendering: overfitting, the best checkpoint, the table and the UI panel."""

from __future__ import annotations

import numpy as np

from studio.evaluate.report import chart_points, format_table, scorecard_panel
from studio.evaluate.similarity import is_near_copy, nearest_training_image, ssim
from studio.evaluate.subject import infer_trigger, noun_phrase
from studio.evaluate.verdict import best_checkpoint, overfitting


def score(step, subject, prompt, prior, memorised=0.0, held_out=None, loss=None) -> dict:
    return {
        "step": step,
        "subject_fidelity": subject,
        "prompt_fidelity": prompt,
        "prior_preservation": prior,
        "memorisation": memorised,
        "held_out": prompt if held_out is None else held_out,
        "prior_pixel_distance": 0.0 if step == 0 else 0.1,
        "train_loss": loss,
        "details": {},
    }


def test_held_out_drop_with_falling_loss_is_overfitting_and_a_steady_run_is_not() -> None:
    rising_then_falling = [score(0, 0.0, 0.6, 1.0), score(100, 0.8, 0.7, 0.9), score(200, 0.9, 0.3, 0.6)]
    steady = [score(0, 0.0, 0.6, 1.0), score(100, 0.8, 0.7, 0.9), score(200, 0.9, 0.65, 0.9)]
    assert overfitting(rising_then_falling, (0.08, 0.04))["flagged"]
    assert "step 100" in overfitting(rising_then_falling, (0.08, 0.04))["reason"]
    assert not overfitting(steady, (0.08, 0.04))["flagged"]
    # held-out fidelity fell but so did the fit (the loss rose): a broken run, not an overfitted one
    assert not overfitting(rising_then_falling, (0.04, 0.08))["flagged"]


def test_memorising_the_training_images_is_flagged() -> None:
    copies = [score(0, 0.0, 0.6, 1.0), score(100, 1.0, 0.6, 0.9, memorised=0.75)]
    verdict = overfitting(copies, (0.08, 0.07))
    assert verdict["flagged"] and "75%" in verdict["reason"]


def test_best_checkpoint_trades_fidelity_against_drift_and_says_why() -> None:
    scores = [score(0, 0.0, 0.6, 1.0), score(100, 0.7, 0.7, 0.9), score(200, 1.0, 0.3, 0.5, memorised=0.5)]
    best = best_checkpoint(scores)
    assert best["step"] == 100
    assert "step 100" in best["reason"] and "step 200: 1.30" in best["reason"]
    # a tie goes to the earlier checkpoint (less drift)
    assert best_checkpoint([score(0, 0, 0, 1), score(50, 0.5, 0.5, 0.5), score(100, 0.5, 0.5, 0.5)])["step"] == 50


def test_table_and_panel_mark_the_best_checkpoint() -> None:
    scores = [score(0, 0.0, 0.6, 1.0), score(100, 0.7, 0.7, 0.9, loss=0.05), score(200, 1.0, 0.3, 0.5, loss=0.04)]
    card = {
        "run_id": "r1",
        "judge": "pocket",
        "settings": {"prompts": 28, "steps": 20},
        "checkpoints": scores,
        "best": best_checkpoint(scores),
        "overfitting": overfitting(scores, (0.08, 0.04)),
    }
    panel = scorecard_panel(card)
    assert panel["rows"][0][0] == "base" and panel["rows"][1][0] == "100 *"
    assert len(panel["rows"][1]) == len(panel["headers"])
    assert panel["chart"]["x"] == [0, 100, 200]
    assert panel["chart"]["series"]["prompt_fidelity"] == [0.6, 0.7, 0.3]
    assert panel["best_step"] == 100 and panel["overfitted"]
    assert {"step": 200, "score": "prior_preservation", "value": 0.5} in chart_points(card)
    assert "OVERFITTED" in format_table(card) and "100 *" in format_table(card)


def test_near_copy_needs_the_same_pixels_not_just_the_same_subject() -> None:
    from PIL import Image

    from studio.evaluate.similarity import as_array
    from studio.pocket.world import Scene, render

    original = as_array(render(Scene("star", "blue", "black", 0.5, 0.5, 0.6)))
    moved = as_array(render(Scene("star", "blue", "black", 0.35, 0.6, 0.5)))
    noisy = np.clip(original + np.random.default_rng(0).normal(0, 0.01, original.shape), 0, 1).astype(np.float32)
    assert ssim(original, original) > 0.999
    assert is_near_copy(nearest_training_image(noisy, [moved, original]))
    assert not is_near_copy(nearest_training_image(moved, [original]))
    assert as_array(Image.new("RGB", (32, 32)), (64, 64)).shape == (64, 64, 3)


def test_subject_phrase_and_trigger_come_from_prompts_and_captions() -> None:
    assert noun_phrase("a photo of sks dog") == "sks dog"
    assert noun_phrase("a sks diamond on a black background") == "sks diamond"
    assert infer_trigger(["a zq on a black background", "a zq on a white background"]) == "zq"
    assert infer_trigger(["a red circle on a black background"]) is None


def test_the_next_step_is_said_in_plain_words():
    from studio.evaluate.report import next_step

    def card(best, flagged):
        steps = [{"step": s} for s in (0, 100, 200)]
        return {"checkpoints": steps, "best": {"step": best}, "overfitting": {"flagged": flagged}}

    assert next_step(card(100, True)).startswith("Use the step-100 checkpoint (later steps copy the training images)")
    assert "later steps score lower" in next_step(card(100, False))
    assert next_step(card(0, False)).startswith("Training has not helped yet")
    assert "fewer steps or more images" in next_step(card(200, True))
    assert next_step(card(200, False)).startswith("Use the final LoRA")
