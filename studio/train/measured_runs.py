"""Finished runs as measurements: seconds per image-step, loading, the tail after the last step (final checkpoint,
exports, their check) and peak memory, read from each run's config and events. The most exact basis an estimate
(estimate.py) has for a run shaped like one already made here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.train.config import RunConfig
from studio.train.estimate import Estimate, from_config, method_kind


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

    from studio import runs
    from studio.train.config import load_config_file

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


def same_run_shape(a: RunConfig, b: RunConfig) -> bool:
    keys = ("base_model", "resolution", "mixed_precision", "gradient_checkpointing", "device", "export_check")
    return method_kind(a) == method_kind(b) and all(getattr(a.training, k) == getattr(b.training, k) for k in keys)


def from_same_runs(config: RunConfig, same: list[MeasuredRun], image_count: int) -> Estimate:
    import statistics

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    modelled = from_config(config, image_count)
    training = config.training
    images = training.batch_size * training.gradient_accumulation
    parts = dict(modelled.parts)
    steps_key = f"{training.steps} steps"
    parts[steps_key] = training.steps * images * statistics.median(r.seconds_per_image_step for r in same)
    parts["load"] = median([r.load_seconds for r in same]) or parts["load"]
    # the tail is the final save and the export: measured as a whole
    parts["export"] = median([r.tail_seconds for r in same]) or parts["export"]
    ram, gpu = median([r.peak_ram_gb for r in same]), median([r.peak_gpu_gb for r in same])
    modelled.parts, modelled.seconds = parts, sum(parts.values())
    modelled.basis = f"measured on {len(same)} earlier run(s) of this model and method here"
    if ram is not None and training.batch_size == same[0].config.training.batch_size:
        modelled.ram_gb = ram
    if gpu is not None and training.batch_size == same[0].config.training.batch_size:
        modelled.gpu_gb = gpu
    modelled.memory_gb = round(modelled.gpu_gb if modelled.gpu_gb is not None else modelled.ram_gb, 1)
    return modelled
