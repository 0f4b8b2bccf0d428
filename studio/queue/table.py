"""The queue and a sweep as tables (headers + rows of text), for the CLI and a gr.Dataframe alike.

A sweep's table puts its entries' scorecards side by side: one row per entry with the swept values, the final loss,
the best checkpoint's scores and its step. Nothing here loads a model: scorecards are read from the run folders.
"""

from __future__ import annotations

import json
from pathlib import Path

from studio import runs
from studio.evaluate.report import SCORECARD, text_table
from studio.queue.store import QueueEntry, QueueState
from studio.runs.names import run_label

QUEUE_HEADERS = ["#", "sweep", "status", "dataset", "settings", "run", "step", "loss", "note"]
SCORES = (
    ("subject_fidelity", "subject"),
    ("prompt_fidelity", "prompt"),
    ("prior_preservation", "prior"),
    ("held_out", "held-out"),
    ("memorisation", "memorised"),
)


def _dataset_label(dataset: str) -> str:
    path = Path(dataset)
    if path.parent.name == "prepared":  # <name>/prepared/<variant>
        return f"{path.parent.parent.name}/{path.name}"
    return path.name


def _settings(entry: QueueEntry) -> str:
    return ", ".join(f"{k}={v}" for k, v in entry.swept.items()) or "-"


def _run_name(entry: QueueEntry, runs_root: Path) -> str:
    """The run as every list names it (its name and trigger), with the id a file or a CLI call needs."""
    return f"{run_label(runs_root / str(entry.run_id))} ({entry.run_id})"


def _run_state(entry: QueueEntry, runs_root: Path) -> runs.RunState | None:
    folder = runs_root / str(entry.run_id)
    return runs.replay(folder) if entry.run_id and (folder / runs.CONFIG).is_file() else None


def status_word(entry: QueueEntry) -> str:
    return "scoring" if entry.status == "running" and entry.phase == "scoring" else entry.status


def queue_rows(state: QueueState, runs_root: Path) -> list[list[str]]:
    rows = []
    for entry in state.entries:
        run = _run_state(entry, runs_root)
        status = status_word(entry)
        step = f"{run.last_step}/{run.total_steps or entry.config['training']['steps']}" if run else "-"
        loss = f"{run.losses[-1][1]:.4f}" if run and run.losses else "-"
        row = [str(entry.id), entry.sweep, status, _dataset_label(entry.dataset), _settings(entry)]
        rows.append(row + [_run_name(entry, runs_root) if run else entry.run_id or "-", step, loss, entry.reason or ""])
    return rows


def read_card(runs_root: Path, run_id: str | None) -> dict | None:
    path = runs_root / str(run_id) / "eval" / SCORECARD
    return json.loads(path.read_text(encoding="utf-8")) if run_id and path.is_file() else None


def sweep_table(entries: list[QueueEntry], runs_root: Path) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): one row per entry of the sweep, its scorecard's best checkpoint beside its swept values."""
    keys = list(dict.fromkeys(k for e in entries for k in e.swept))
    several_datasets = len({e.dataset for e in entries}) > 1
    headers = ["#", *keys, *(["dataset"] if several_datasets else []), "status", "final loss"]
    headers += [title for _, title in SCORES] + ["best step"]
    rows = []
    for entry in entries:
        run = _run_state(entry, runs_root)
        card = read_card(runs_root, entry.run_id)
        row = [str(entry.id), *(entry.swept.get(k, "-") for k in keys)]
        row += [_dataset_label(entry.dataset)] if several_datasets else []
        row += [status_word(entry), f"{run.losses[-1][1]:.4f}" if run and run.losses else "-"]
        best = _best_score(card)
        row += [_number(best.get(name)) for name, _ in SCORES] if best else ["-"] * len(SCORES)
        row.append(str(best["step"]) if best else "-")
        rows.append(row)
    return headers, rows


def _best_score(card: dict | None) -> dict | None:
    """The scores of the scorecard's best checkpoint (the last one when it names none)."""
    if not card:
        return None
    trained = [score for score in card["checkpoints"] if score["step"] > 0]
    if not trained:
        return None
    best = card["best"].get("step")
    return next((s for s in trained if s["step"] == best), trained[-1])


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_sweep(sweep_id: str, entries: list[QueueEntry], runs_root: Path) -> str:
    headers, rows = sweep_table(entries, runs_root)
    unscored = sum(1 for e in entries if e.status == "finished" and read_card(runs_root, e.run_id) is None)
    note = f"\n{unscored} finished entr{'y has' if unscored == 1 else 'ies have'} no scorecard" if unscored else ""
    return (
        f"{sweep_id}: {len(entries)} entries (scores of each run's best checkpoint)\n{text_table(headers, rows)}{note}"
    )
