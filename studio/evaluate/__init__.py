"""Evaluation: a scorecard of a run's checkpoints (subject and prompt fidelity, prior preservation, memorisation,
overfitting) and the best checkpoint, exact on the pocket model and CLIP/DINO-based on real models.

Importing this package loads no torch: the UI reads saved scorecards through `report`; `scorecard.evaluate_run`
renders and scores (and imports the model stack when called).
"""

from __future__ import annotations

from studio.evaluate.report import chart_points, format_table, read_scorecard, scorecard_panel


def evaluate_run(*args, **kwargs):
    """See `studio.evaluate.scorecard.evaluate_run` (imported on first call: it needs torch)."""
    from studio.evaluate.scorecard import evaluate_run as run

    return run(*args, **kwargs)


__all__ = ["chart_points", "evaluate_run", "format_table", "read_scorecard", "scorecard_panel"]
