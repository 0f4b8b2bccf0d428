"""Reading a scorecard: is the run overfitted, and which checkpoint is best (and why)."""

from __future__ import annotations

from typing import Any

# held-out fidelity this far below its best earlier value (the base model counts) is a real drop, not noise
HELD_OUT_DROP = 0.2
# this share of trigger samples being near-copies of training images is memorisation
MEMORISATION_LIMIT = 0.5


def _value(score: Any, name: str) -> float | None:
    return score[name] if isinstance(score, dict) else getattr(score, name)


def overfitting(scores: list, loss_trend: tuple[float, float] | None) -> dict:
    """Flag a run whose held-out fidelity dropped while its training loss kept falling, or that memorises.

    `scores`: the base model first, then checkpoints in step order; `loss_trend`: mean training loss over the
    first and the last quarter of the logged steps.
    """
    trained = [s for s in scores if _value(s, "step") > 0]
    if not trained:
        return {"flagged": False, "reason": "no checkpoint scored"}
    last = trained[-1]
    earlier = [s for s in scores[:-1] if _value(s, "held_out") is not None]
    reasons = []
    drop = None
    if earlier and _value(last, "held_out") is not None:
        peak = max(earlier, key=lambda s: _value(s, "held_out"))
        drop = _value(peak, "held_out") - _value(last, "held_out")
        loss_fell = loss_trend is not None and loss_trend[1] < loss_trend[0]
        if drop >= HELD_OUT_DROP and loss_fell:
            where = "the base model" if _value(peak, "step") == 0 else f"step {_value(peak, 'step')}"
            reasons.append(
                f"held-out fidelity fell from {_value(peak, 'held_out'):.2f} ({where}) to "
                f"{_value(last, 'held_out'):.2f} at step {_value(last, 'step')} while the training loss fell "
                f"from {loss_trend[0]:.4f} to {loss_trend[1]:.4f}"
            )
    memorised = _value(last, "memorisation")
    if memorised is not None and memorised >= MEMORISATION_LIMIT:
        reasons.append(f"{memorised:.0%} of the trigger samples at step {_value(last, 'step')} copy a training image")
    return {
        "flagged": bool(reasons),
        "reason": "; ".join(reasons) or "held-out fidelity held and no training image is copied",
        "held_out_drop": drop,
        "loss_trend": list(loss_trend) if loss_trend else None,
    }


def checkpoint_value(score: Any) -> float:
    """subject + prompt fidelity + prior preservation - memorisation (a missing score counts 0)."""
    parts = [_value(score, n) or 0.0 for n in ("subject_fidelity", "prompt_fidelity", "prior_preservation")]
    return sum(parts) - (_value(score, "memorisation") or 0.0)


def best_checkpoint(scores: list) -> dict:
    """The checkpoint with the highest value; on a tie the earlier one (less drift from the base model)."""
    trained = [s for s in scores if _value(s, "step") > 0]
    if not trained:
        return {"step": None, "reason": "no checkpoint scored"}
    best = max(trained, key=lambda s: (round(checkpoint_value(s), 6), -_value(s, "step")))

    def fmt(name: str) -> str:
        value = _value(best, name)
        return "n/a" if value is None else f"{value:.2f}"

    others = ", ".join(f"step {_value(s, 'step')}: {checkpoint_value(s):.2f}" for s in trained if s is not best)
    reason = (
        f"step {_value(best, 'step')} has the highest subject + prompt fidelity + prior preservation - memorisation "
        f"= {checkpoint_value(best):.2f} (subject {fmt('subject_fidelity')}, prompt {fmt('prompt_fidelity')}, "
        f"prior {fmt('prior_preservation')}, memorised {fmt('memorisation')})"
    )
    if others:
        reason += f"; {others}"
    return {"step": _value(best, "step"), "value": round(checkpoint_value(best), 4), "reason": reason}
