"""What a person does to the queue (add, remove, retry, start, stop): one function each, for the CLI and the UI."""

from __future__ import annotations

from pathlib import Path

from studio import runs
from studio.queue.plan import plan, scored_by_default
from studio.queue.store import QueueEntry, QueueStore
from studio.train.config import RunConfig

MAX_ENTRIES_PER_ADD = 64  # a sweep this large is more likely a typo (an extra value list) than a plan


def add_entries(
    store: QueueStore,
    base: RunConfig,
    datasets: list[str | Path],
    sweeps: dict[str, list[str]] | None = None,
    evaluate: bool | None = None,
    eval_seeds: int = 1,
    eval_steps: int | None = 10,
) -> list[QueueEntry]:
    """Queue every (dataset x swept values) combination under one new sweep id; all checked before any is queued.

    `evaluate` None: score after training when the base model is the pocket model (exact and quick there).
    """
    if eval_seeds < 1 or (eval_steps is not None and eval_steps < 1):
        raise ValueError(f"the scorecard needs 1 or more seeds and steps, got {eval_seeds} seeds, {eval_steps} steps")
    planned = plan(base, datasets, sweeps or {})
    if len(planned) > MAX_ENTRIES_PER_ADD:
        raise ValueError(f"this would queue {len(planned)} trainings (at most {MAX_ENTRIES_PER_ADD} in one add)")
    with store.update() as state:
        sweep_id = f"sweep-{state.next_sweep}"
        state.next_sweep += 1
        added = []
        for item in planned:
            entry = QueueEntry(
                id=state.next_id,
                sweep=sweep_id,
                config=item.config.to_dict(),
                dataset=item.dataset,
                swept=item.swept,
                evaluate=scored_by_default(item.config) if evaluate is None else evaluate,
                eval_seeds=eval_seeds,
                eval_steps=eval_steps,
            )
            state.next_id += 1
            state.entries.append(entry)
            added.append(entry)
    return added


def remove_entry(store: QueueStore, entry_id: int) -> str:
    """Take an entry out of the queue; a running one's run is asked to stop first (its folder stays in Runs)."""
    with store.update() as state:
        entry = state.entry(entry_id)
        state.entries.remove(entry)
        if entry.status != "running" or not entry.run_id:
            return f"removed entry {entry_id}"
        run_dir = store.data_dir / "runs" / entry.run_id
        if (run_dir / runs.CONFIG).is_file() and runs.replay(run_dir).status in ("running", "created"):
            runs.send_command(run_dir, "cancel")
            return f"removed entry {entry_id}; its run {entry.run_id} stops after saving a checkpoint"
        return f"removed entry {entry_id}"


def retry_entry(store: QueueStore, entry_id: int) -> str:
    """Queue a failed or cancelled entry again; with a run folder it resumes from that run's last checkpoint."""
    with store.update() as state:
        entry = state.entry(entry_id)
        if entry.status not in ("failed", "cancelled"):
            raise ValueError(f"entry {entry_id} is {entry.status}; only a failed or cancelled entry is retried")
        entry.status, entry.phase, entry.pid, entry.resumes = "queued", "training", None, 0
        entry.reason = f"retried; resumes run {entry.run_id}" if entry.run_id else "retried"
    return f"entry {entry_id} is queued again"


def request_processing(store: QueueStore, on: bool) -> None:
    """Start (a runner then works through the queue) or stop (the running entry stops, resumable) processing."""
    with store.update() as state:
        if on and state.next_queued() is None and state.running() is None:
            raise ValueError("the queue has nothing to train: add entries, or retry a failed or cancelled one")
        state.processing = on
