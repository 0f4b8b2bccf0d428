"""A persistent queue of trainings in the data folder: sweeps, folder batches, one run at a time, scorecards.

store.py    queue.json: entries (resolved config, dataset, status, run id), atomic writes under a lock
plan.py     `--sweep key=v1,v2` and folder batches -> checked entries (nothing queued if one is bad)
actions.py  add, remove, retry, start/stop processing
runner.py   one entry at a time through the job manager; survives restarts; scorecard after each run
worker.py   the app's background thread over the runner
table.py    the queue and a sweep's scorecards side by side, as rows
"""

from __future__ import annotations

from studio.queue.actions import add_entries, remove_entry, request_processing, retry_entry
from studio.queue.runner import Progress, QueueRunner, RunnerBusy, RunnerLock
from studio.queue.store import QueueEntry, QueueState, QueueStore

__all__ = [
    "Progress",
    "QueueEntry",
    "QueueRunner",
    "QueueState",
    "QueueStore",
    "RunnerBusy",
    "RunnerLock",
    "add_entries",
    "remove_entry",
    "request_processing",
    "retry_entry",
]
