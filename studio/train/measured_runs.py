"""Finished runs as measurements: seconds per image-step, loading, the tail after the last step (final checkpoint,
exports, their check) and peak memory, read from each run's config and events. The most exact basis an estimate
(estimate.py) has for a run shaped like one already made here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio import runs
from studio.train.config import RunConfig, load_config_file


@dataclass(frozen=True)
class MeasuredRun:
    config: RunConfig
    seconds_per_image_step: float
    load_seconds: float | None  # run folder written -> first step starts (one start, not resumed)
    tail_seconds: float | None  # last step -> finished: the final checkpoint, the exports and their check
    peak_ram_gb: float | None
    peak_gpu_gb: float | None


def measured_runs(runs_root: Path) -> list[MeasuredRun]:
    """Finished runs under `runs_root` with what they took, read from their config and events."""
    import statistics

    found = []
    for state in runs.list_runs(runs_root):
        if state.status != "finished":
            continue
        try:
            config = load_config_file(state.folder / runs.CONFIG)
            written = (state.folder / runs.CONFIG).stat().st_mtime
        except (OSError, ValueError, TypeError, KeyError):
            continue
        events = runs.read_events(state.folder)
        steps = [e for e in events if e.get("type") == "step" and "seconds" in e]
        if not steps:
            continue
        training = config.training
        images = training.batch_size * training.gradient_accumulation
        starts = [e for e in events if e.get("type") == "started"]
        finished = next((e for e in events if e.get("type") == "finished"), {})
        single = len(starts) == 1 and "time" in starts[0]
        # the first step pays for allocator growth and kernel choice: the median is the steady step
        step_seconds = statistics.median(e["seconds"] for e in steps)
        first = steps[0]
        found.append(
            MeasuredRun(
                config,
                step_seconds / images,
                first["time"] - first["seconds"] - written if single else None,
                finished["time"] - steps[-1]["time"] if single and "time" in finished else None,
                finished.get("peak_ram_gb"),
                finished.get("peak_gpu_gb"),
            )
        )
    return found
