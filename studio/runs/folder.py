"""The run folder: everything about a run lives in `<data folder>/runs/<run-id>/`, so its state can be rebuilt from disk.

Layout (fixed roles, see docs/architecture):
    config.yaml     the resolved config (defaults -> preset -> user overrides), written once at creation
    dataset.json    what was trained on: every file with its hash and caption
    events.jsonl    append-only typed events, one JSON object per line (see EVENT_TYPES)
    control.json    commands in: counters the training loop polls between steps (cancel, sample_now, save_now)
    name.json       what a person calls the run and its trigger word (run_names); renaming changes nothing else
    samples/        validation images, checkpoints/ resumable training state, outputs/ exported weights

Two one-way channels: the training process only appends to events.jsonl; a watcher (CLI, UI) only writes
control.json. A watcher holds no state the folder does not have, so `replay` gives every watcher the same view.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from studio.data.files import write_json_atomic, write_text_atomic, writing_in
from studio.paths import data_dir
from studio.runs.layout import CONFIG, CONTROL, DATASET, EVENTS, SUBFOLDERS

EVENT_TYPES = ("started", "step", "sample", "checkpoint", "warning", "finished", "failed", "cancelled", "export")
# long preparation before the first step (DreamBooth's class images): task, done, total
EVENT_TYPES += ("progress",)
TERMINAL = {"finished": "finished", "failed": "failed", "cancelled": "cancelled"}
COMMANDS = ("cancel", "sample_now", "save_now")
# the reason of a run stopped by Ctrl-C (its terminal went, with the app that started it): resumable, not a choice
KEYBOARD_INTERRUPT = "interrupted from the keyboard; resumes from the last checkpoint"
# how a run's `failed` reason starts when its process died without a word (killed, out of host memory): a death to
# resume from the last checkpoint, not a failure the training reported (NaN loss, a bad dataset)
PROCESS_DIED = "the training process exited with code"


def runs_root() -> Path:
    return data_dir() / "runs"


def new_run_id(method: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{method}-{secrets.token_hex(2)}"


def resolve_run(run: str | Path) -> Path:
    """A run folder from a path or a run id under runs_root()."""
    path = Path(run)
    if path.is_dir() and (path / CONFIG).is_file():
        return path
    candidate = runs_root() / str(run)
    if (candidate / CONFIG).is_file():
        return candidate
    raise FileNotFoundError(f"no run {str(run)!r} (looked in {runs_root()})")


def create_run_folder(config_yaml: str, dataset_manifest: dict, run_id: str, root: Path | None = None) -> Path:
    folder = (root or runs_root()) / run_id
    if folder.exists():
        raise ValueError(f"run {run_id!r} already exists")
    try:
        with writing_in(folder.parent):
            for sub in SUBFOLDERS:
                (folder / sub).mkdir(parents=True)
            write_json_atomic(folder / DATASET, dataset_manifest)
            write_json_atomic(folder / CONTROL, {name: 0 for name in COMMANDS})
            # config last: a folder with config.yaml is a complete run (resolve_run looks for it)
            write_text_atomic(folder / CONFIG, config_yaml)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no half-made run folder
        raise
    return folder


def read_config(run_dir: Path) -> dict:
    """The run's resolved config as plain data (every key is there: it was written whole at creation). Readers
    below the training engine (generate, the run's name) use this; training itself parses it with its configs."""
    import yaml

    data = yaml.safe_load((Path(run_dir) / CONFIG).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{Path(run_dir) / CONFIG} holds no config")
    return data


# ------------------------------------------------------------------ events out


def append_event(run_dir: Path, kind: str, **fields: Any) -> dict:
    """Append one event; flushed and fsynced, so a crash right after still leaves it on disk."""
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r}")
    event = {"type": kind, "time": round(time.time(), 3), **fields}
    path = run_dir / EVENTS
    # a process killed mid-write leaves a torn last line: end it, so this event starts on a line of its own
    prefix = "\n" if path.is_file() and path.stat().st_size and not _ends_with_newline(path) else ""
    # one write() of one line in append mode: concurrent readers never see half a line from us
    with open(run_dir / EVENTS, "a", encoding="utf-8") as stream:
        stream.write(prefix + json.dumps(event, ensure_ascii=False) + "\n")
        stream.flush()
        os.fsync(stream.fileno())
    return event


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as stream:
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) == b"\n"


def read_events(run_dir: Path) -> list[dict]:
    path = run_dir / EVENTS
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line from a killed process: everything before it still counts
    return events


@dataclass
class RunState:
    run_id: str
    folder: Path
    status: str = "created"  # created, running, interrupted, finished, failed, cancelled
    last_step: int = 0
    total_steps: int | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    checkpoints: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    exports: list[dict] = field(default_factory=list)
    reason: str | None = None

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "last_step": self.last_step,
            "total_steps": self.total_steps,
            "last_loss": self.losses[-1][1] if self.losses else None,
            "samples": len(self.samples),
            "checkpoints": [c["step"] for c in self.checkpoints],
            "reason": self.reason,
        }


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_alive(pid: int | None) -> bool:
    """Whether a process with this id lives (a run's or a queue runner's); False for None or 0."""
    return _alive(pid)


def replay(run_dir: Path) -> RunState:
    """Rebuild a run's state from its folder alone (the event log plus what is on disk)."""
    run_dir = Path(run_dir)
    state = RunState(run_dir.name, run_dir)
    pid = None
    for event in read_events(run_dir):
        kind = event.get("type")
        if kind == "started":
            state.status, state.reason = "running", None
            state.total_steps = event.get("total_steps", state.total_steps)
            pid = event.get("pid")
        elif kind == "step":
            state.last_step = event["step"]
            state.losses.append((event["step"], event["loss"]))
        elif kind == "sample":
            state.samples.append(event)
        elif kind == "checkpoint":
            state.checkpoints.append(event)
        elif kind == "warning":
            state.warnings.append(event.get("message", ""))
        elif kind == "export":
            state.exports.append(event)
        elif kind in TERMINAL:
            state.status = TERMINAL[kind]
            state.reason = event.get("reason")
            state.last_step = event.get("step", state.last_step)
    # a resumed run replays its steps again from the checkpoint: keep the last value for each step
    state.losses = sorted(dict(state.losses).items())
    # checkpoints pruned since (keep last K) are no longer usable
    state.checkpoints = [c for c in state.checkpoints if (run_dir / c["path"]).is_dir()]
    if state.status == "running" and not _alive(pid):
        state.status = "interrupted"  # the process died without a word (SIGKILL, power loss): resumable
    return state


def list_runs(root: Path | None = None) -> list[RunState]:
    root = root or runs_root()
    if not root.is_dir():
        return []
    return [replay(folder) for folder in sorted(root.iterdir()) if (folder / CONFIG).is_file()]


# ------------------------------------------------------------------ commands in


def read_control(run_dir: Path) -> dict[str, int]:
    try:
        data = json.loads((run_dir / CONTROL).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        data = {}
    return {name: int(data.get(name, 0)) for name in COMMANDS}


def send_command(run_dir: Path, command: str) -> None:
    """Ask a run to cancel, sample now or save now.

    Commands are counters, not flags: the loop remembers the last count it acted on, so it never has to write
    this file back and a watcher's request cannot be lost in a race with the run.
    """
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; known: {', '.join(COMMANDS)}")
    control = read_control(run_dir)
    control[command] += 1
    write_json_atomic(run_dir / CONTROL, control)


class CommandWatcher:
    """Seen by the loop between steps: which commands arrived since the last poll."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.seen = read_control(run_dir)

    def poll(self) -> set[str]:
        current = read_control(self.run_dir)
        arrived = {name for name in COMMANDS if current[name] > self.seen[name]}
        self.seen = current
        return arrived
