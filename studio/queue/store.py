"""The queue on disk: `<data>/queue.json`, one file that every reader (CLI, app, a second app) sees whole.

Writes go through `QueueStore.update()`: a lock (a thread lock plus an advisory file lock, so the CLI and the app
can both add entries), read, change, then an atomic write (temp file + rename, as run folders do). Readers never
lock: a rename means they see the old file or the new one.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from studio.data.files import write_json_atomic

QUEUE_FILE = "queue.json"
LOCK_FILE = ".queue.lock"
QUEUE_VERSION = 1
STATUSES = ("queued", "running", "finished", "failed", "cancelled")
PHASES = ("training", "scoring")


@dataclass
class QueueEntry:
    """One training of the queue: what to train (a resolved config and a dataset), and how far it got."""

    id: int = field(metadata={"help": "Number of the entry in this queue (never reused)."})
    sweep: str = field(metadata={"help": "Id shared by every entry of one `add` (a sweep or a folder batch)."})
    config: dict = field(metadata={"help": "The resolved run config (RunConfig.to_dict()), validated when added."})
    dataset: str = field(metadata={"help": "A dataset folder (absolute) or a dataset name, as `studio train` takes."})
    swept: dict = field(default_factory=dict, metadata={"help": "The swept settings of this entry (key -> value)."})
    status: str = field(default="queued", metadata={"help": "queued, running, finished, failed or cancelled."})
    phase: str = field(default="training", metadata={"help": "While running: training, or scoring (the eval)."})
    run_id: str | None = field(default=None, metadata={"help": "The run folder's id, once the entry started."})
    pid: int | None = field(default=None, metadata={"help": "The process training (or scoring) it right now."})
    evaluate: bool = field(default=True, metadata={"help": "Compute the run's scorecard after it finishes."})
    eval_seeds: int = field(default=1, metadata={"help": "Seeds per prompt for the scorecard."})
    eval_steps: int | None = field(default=10, metadata={"help": "Denoising steps for the scorecard (None: run's)."})
    resumes: int = field(default=0, metadata={"help": "How often a died training process was resumed."})
    reason: str | None = field(default=None, metadata={"help": "Why it failed, was cancelled or will resume."})
    added: float = field(default_factory=time.time, metadata={"help": "When it was queued (Unix time)."})

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"queue entry status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if self.phase not in PHASES:
            raise ValueError(f"queue entry phase must be one of {', '.join(PHASES)}, got {self.phase!r}")
        if self.eval_seeds < 1:
            raise ValueError(f"eval_seeds must be 1 or more, got {self.eval_seeds}")
        if self.eval_steps is not None and self.eval_steps < 1:
            raise ValueError(f"eval_steps must be 1 or more, got {self.eval_steps}")

    @property
    def method(self) -> str:
        return self.config["method"]


@dataclass
class QueueState:
    """The whole file: the entries in the order they run, and whether someone asked for them to be processed."""

    entries: list[QueueEntry] = field(default_factory=list)
    processing: bool = False  # on: a runner works through the queue (and an app restarted meanwhile resumes it)
    next_id: int = 1
    next_sweep: int = 1

    def entry(self, entry_id: int) -> QueueEntry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise ValueError(f"no entry {entry_id} in the queue")

    def running(self) -> QueueEntry | None:
        return next((e for e in self.entries if e.status == "running"), None)

    def next_queued(self) -> QueueEntry | None:
        return next((e for e in self.entries if e.status == "queued"), None)

    def has_run(self, run_id: str) -> bool:
        return any(e.run_id == run_id for e in self.entries)

    def sweep(self, sweep_id: str) -> list[QueueEntry]:
        entries = [e for e in self.entries if e.sweep == sweep_id]
        if not entries:
            known = ", ".join(dict.fromkeys(e.sweep for e in self.entries)) or "none"
            raise ValueError(f"no sweep {sweep_id!r} in the queue (known: {known})")
        return entries


class QueueStore:
    """Reads and writes one data folder's queue file."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / QUEUE_FILE
        self._lock = threading.Lock()

    def load(self) -> QueueState:
        if not self.path.is_file():
            return QueueState()
        data = json.loads(self.path.read_text(encoding="utf-8"))
        version = data.get("version")
        if version != QUEUE_VERSION:
            raise ValueError(f"{self.path}: queue version {version!r}, this studio reads {QUEUE_VERSION}")
        known = {f.name for f in fields(QueueEntry)}
        entries = []
        for item in data.get("entries", []):
            unknown = sorted(set(item) - known)
            if unknown:
                raise ValueError(f"{self.path}: unknown key(s) in a queue entry: {', '.join(unknown)}")
            entries.append(QueueEntry(**item))
        return QueueState(entries, bool(data.get("processing")), data.get("next_id", 1), data.get("next_sweep", 1))

    def save(self, state: QueueState) -> None:
        write_json_atomic(
            self.path,
            {
                "version": QUEUE_VERSION,
                "processing": state.processing,
                "next_id": state.next_id,
                "next_sweep": state.next_sweep,
                "entries": [asdict(entry) for entry in state.entries],
            },
        )

    @contextlib.contextmanager
    def update(self) -> Iterator[QueueState]:
        """Read, let the caller change, write back; one writer at a time across threads and processes."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.data_dir / LOCK_FILE, "a") as lock_file:
            _lock_file(lock_file)
            state = self.load()
            yield state
            self.save(state)

    def change(self, entry_id: int, **changes) -> QueueEntry | None:
        """Set fields of one entry; None when it was removed meanwhile (its runner then lets it go)."""
        with self.update() as state:
            try:
                entry = state.entry(entry_id)
            except ValueError:
                return None
            for name, value in changes.items():
                setattr(entry, name, value)
            entry.__post_init__()
            return entry


def _lock_file(stream) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: the thread lock alone (one process writes the queue there)
        return
    fcntl.flock(stream.fileno(), fcntl.LOCK_EX)  # released when the file is closed
