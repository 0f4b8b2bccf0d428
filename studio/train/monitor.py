"""What a watcher shows of a run, computed from its folder alone: loss (raw and smoothed), lr, speed, ETA, samples.

Every front end (the UI's live view, its runs list) calls `summarise`, so a page reload and a second tab see
exactly the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from studio import runs
from studio.runs.names import RunIdentity, identity
from studio.train.methods import methods

SMOOTHING = 0.9  # weight of the past in the loss's moving average (TensorBoard's default slider value)
SPEED_WINDOW = 20  # recent step events the speed is measured over


@dataclass
class Point:
    step: int
    loss: float
    smoothed: float
    lr: float


@dataclass
class RunSummary:
    run_id: str
    folder: Path
    status: str
    step: int
    total_steps: int | None
    reason: str | None
    method: str = ""
    dataset: str = ""
    settings: dict = field(default_factory=dict)
    points: list[Point] = field(default_factory=list)
    steps_per_second: float | None = None
    eta_seconds: float | None = None
    samples: list[dict] = field(default_factory=list)  # {"path": absolute, "step": n, "prompt": text}
    checkpoints: list[int] = field(default_factory=list)
    exports: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    event_count: int = 0
    name: str = ""  # what a person calls the run (run_names); the id stays for files
    trigger: str | None = None

    @property
    def label(self) -> str:
        """The run as every list shows it: its name and trigger word (run_names.RunIdentity.label)."""
        return RunIdentity(self.run_id, self.name or self.run_id, self.trigger).label

    @property
    def last_sample(self) -> dict | None:
        return self.samples[-1] if self.samples else None


def smooth(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """Exponential moving average with bias correction, so the first points are not pulled towards 0."""
    out, average = [], 0.0
    for index, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight**index))
    return out


def _speed(step_events: list[dict]) -> float | None:
    """Steps per second over the last few step events of the current process (wall time, so it includes saves)."""
    recent = step_events[-SPEED_WINDOW:]
    if len(recent) < 2:
        return None
    steps = recent[-1]["step"] - recent[0]["step"]
    seconds = recent[-1]["time"] - recent[0]["time"]
    return steps / seconds if steps > 0 and seconds > 0 else None


KEY_SETTINGS = ("learning_rate", "steps", "batch_size", "resolution", "base_model")  # the training section's


def key_settings(section: str) -> tuple[str, ...]:
    """The settings of a config section a watcher sees: the shared ones, or those a method names (its registry
    entry's monitor_fields); none of a method this studio does not know (a run from another version)."""
    if section == "training":
        return KEY_SETTINGS
    spec = methods().get(section)
    return spec.monitor_fields if spec else ()


def _config_facts(run_dir: Path) -> tuple[str, dict]:
    try:
        data = yaml.safe_load((run_dir / runs.CONFIG).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return "", {}
    method = str(data.get("method", ""))
    settings = {}
    for section in ("training", method):
        for name in key_settings(section):
            if name in (data.get(section) or {}):
                settings[name] = data[section][name]
    return method, settings


def _dataset_name(run_dir: Path) -> str:
    import json

    try:
        source = json.loads((run_dir / runs.DATASET).read_text(encoding="utf-8")).get("source", "")
    except (OSError, ValueError):
        return ""
    path = Path(source)
    # a dataset's prepared variant: name it "<dataset> (<variant>)"
    if path.parent.name == "prepared":
        return f"{path.parent.parent.name} ({path.name})"
    return path.name or source


def summarise(run_dir: Path) -> RunSummary:
    run_dir = Path(run_dir)
    state = runs.replay(run_dir)
    who = identity(run_dir)
    events = runs.read_events(run_dir)
    method, settings = _config_facts(run_dir)
    summary = RunSummary(
        run_id=state.run_id,
        folder=run_dir,
        status=state.status,
        step=state.last_step,
        total_steps=state.total_steps or settings.get("steps"),
        reason=state.reason,
        method=method,
        dataset=_dataset_name(run_dir),
        settings=settings,
        checkpoints=[c["step"] for c in state.checkpoints],
        warnings=state.warnings,
        event_count=len(events),
        name=who.name,
        trigger=who.trigger,
    )
    # a resumed run repeats steps from its checkpoint: the last value of each step wins, as in replay()
    last_start = max((i for i, e in enumerate(events) if e.get("type") == "started"), default=0)
    by_step = {e["step"]: e for e in events if e.get("type") == "step"}
    steps = [by_step[s] for s in sorted(by_step)]
    smoothed = smooth([e["loss"] for e in steps])
    summary.points = [Point(e["step"], e["loss"], s, e.get("lr", 0.0)) for e, s in zip(steps, smoothed)]
    if summary.status == "running":
        current = [e for e in events[last_start:] if e.get("type") == "step"]
        summary.steps_per_second = _speed(current)
        if summary.steps_per_second and summary.total_steps:
            summary.eta_seconds = max(0, summary.total_steps - summary.step) / summary.steps_per_second
    summary.samples = [
        {"path": run_dir / s["path"], "step": s["step"], "prompt": s.get("prompt", "")}
        for s in state.samples
        if (run_dir / s["path"]).is_file()
    ]
    summary.exports = [run_dir / e["path"] for e in state.exports if (run_dir / e["path"]).exists()]
    return summary


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
