"""A scorecard as a small table (CLI), and as rows + a chart-friendly dict for the UI (no pandas needed).

Both work from the plain dict of `Scorecard.to_dict()` (or `read_scorecard`), so a page can show a saved
scorecard without loading a model.
"""

from __future__ import annotations

import json
from pathlib import Path

from studio.runs import resolve_run

SCORECARD = "scorecard.json"  # <run>/eval/scorecard.json

COLUMNS = (
    ("step", "step"),
    ("train_loss", "loss"),
    ("subject_fidelity", "subject"),
    ("prompt_fidelity", "prompt"),
    ("prior_preservation", "prior"),
    ("prior_pixel_distance", "prior px"),
    ("memorisation", "memorised"),
    ("held_out", "held-out"),
)
SERIES = ("subject_fidelity", "prompt_fidelity", "prior_preservation", "memorisation", "held_out", "train_loss")


def _cell(name: str, value) -> str:
    if value is None:
        return "-"
    if name == "step":
        return "base" if value == 0 else str(value)
    return f"{value:.4f}" if name == "train_loss" else f"{value:.2f}"


def table_rows(card: dict) -> list[list[str]]:
    """One row per scored model (the base model first), formatted; the best checkpoint is marked with *."""
    best = card["best"].get("step")
    rows = []
    for score in card["checkpoints"]:
        row = [_cell(name, score[name]) for name, _ in COLUMNS]
        if score["step"] == best:
            row[0] += " *"
        rows.append(row)
    return rows


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """Right-aligned columns, two spaces apart, for a terminal."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(line, widths)) for line in [headers, *rows])


def format_table(card: dict) -> str:
    headers = [title for _, title in COLUMNS]
    lines = text_table(headers, table_rows(card)).splitlines()
    judge = "pocket evaluator (exact)" if card["judge"] == "pocket" else "CLIP-I / CLIP-T / DINO"
    flag = "OVERFITTED" if card["overfitting"]["flagged"] else "not overfitted"
    return "\n".join(
        [
            f"scorecard of run {card['run_id']}  ({judge}; {card['settings']['prompts']} prompts x seeds, "
            f"{card['settings']['steps']} steps)",
            *lines,
            f"best: {card['best']['reason']}",
            f"{flag}: {card['overfitting']['reason']}",
            f"next: {next_step(card)}",
        ]
    )


def scorecard_panel(card: dict) -> dict:
    """What a Runs/Compare tab shows: `headers` + `rows` for a table, `chart` for a line plot per score over
    steps, and the verdicts as text."""
    steps = [score["step"] for score in card["checkpoints"]]
    return {
        "headers": [title for _, title in COLUMNS],
        "rows": table_rows(card),
        "chart": {
            "x": steps,
            "x_label": "step (0 = base model)",
            "series": {name: [score[name] for score in card["checkpoints"]] for name in SERIES},
        },
        "best_step": card["best"].get("step"),
        "best_reason": card["best"]["reason"],
        "overfitted": card["overfitting"]["flagged"],
        "overfitting_reason": card["overfitting"]["reason"],
    }


def next_step(card: dict) -> str:
    """What to do now, in plain words, from the best checkpoint and the overfitting verdict."""
    steps = [score["step"] for score in card["checkpoints"]]
    best, last = card["best"].get("step"), max(steps, default=0)
    overfitted = card["overfitting"]["flagged"]
    if best in (None, 0):
        return (
            "Training has not helped yet: the base model scores best. Train longer or with a higher learning rate, "
            "and check that every caption holds the trigger word."
        )
    if best < last:
        why = "later steps copy the training images" if overfitted else "later steps score lower"
        return (
            f"Use the step-{best} checkpoint ({why}): compare it in the Compare tab, or train again with about "
            f"{best} steps."
        )
    if overfitted:
        return "The last step is best but copies the training images: train again with fewer steps or more images."
    return "Use the final LoRA (outputs/); it is the best so far, and more steps may still help."


def chart_points(card: dict) -> list[dict]:
    """The chart as long-format points ({step, score, value}), the shape gr.LinePlot reads from a list."""
    chart = scorecard_panel(card)["chart"]
    return [
        {"step": step, "score": name, "value": value}
        for name, values in chart["series"].items()
        if name != "train_loss"
        for step, value in zip(chart["x"], values)
        if value is not None
    ]


def read_scorecard(run: str | Path) -> dict | None:
    """The last scorecard written for a run (a run id or folder), or None when it was never evaluated."""
    path = resolve_run(run) / "eval" / SCORECARD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
