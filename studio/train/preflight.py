"""What is checked before a run folder exists: the base model can be had, the device and precision go together,
and the run fits this machine's memory and disk. Each refusal names the setting to change and how.

Found before, not after: an offline hub id used to fail after five retries (26 s) inside a run folder left
behind as failed, and a preset's fp16 on a CPU only once the folder was written.
"""

from __future__ import annotations

from pathlib import Path

from studio.train.config import RunConfig, TrainingConfig
from studio.train.estimate import Estimate


def check_base_model(training: TrainingConfig) -> None:
    from studio.models import ModelLoadError
    from studio.models.loader import check_available

    try:
        check_available(training.base_model)
    except ModelLoadError as error:
        raise ValueError(f"base_model {training.base_model!r}: {error} Then set base_model again.") from None


def check_device(training: TrainingConfig) -> str:
    """The device the run will train on ("cpu" or "cuda"), or a refusal that says which setting to change."""
    import torch

    cuda = torch.cuda.is_available()
    if training.device == "cuda" and not cuda:
        raise ValueError("device is cuda but no CUDA GPU is available here: set device to auto or cpu")
    device = "cuda" if cuda and training.device != "cpu" else "cpu"
    if device == "cpu" and training.mixed_precision != "no":
        raise ValueError(
            f"mixed_precision {training.mixed_precision} needs a GPU, and this run would train on the CPU: set "
            "mixed_precision to no (--set mixed_precision=no), which trains in float32 with about twice the memory"
        )
    if device == "cuda" and training.mixed_precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU cannot compute in bf16: set mixed_precision to fp16 (or no)")
    return device


def run_estimate(config: RunConfig, image_count: int, runs_root: Path) -> Estimate | None:
    """The estimate the fit is judged on; None for a model whose configs the estimator cannot read."""
    from studio.train import estimate

    try:
        return estimate.estimate(config, runs_root, image_count)
    except (ValueError, OSError, KeyError, TypeError, RuntimeError):
        return None  # an unusual model (its configs unreadable on the meta device): the load itself will tell


def check_fits(config: RunConfig, found: Estimate | None, runs_root: Path) -> None:
    """Refuse a run whose estimated peak memory or disk is more than this machine has, with the numbers."""
    from studio.train import estimate

    if found is None:
        return
    if found.gpu_gb is not None:
        have, what = estimate.gpu_memory_gb(), "GPU memory"
        need = found.gpu_gb
    else:
        have, what = estimate.available_ram_gb(), "available RAM"
        need = found.ram_gb or 0.0
    if have is not None and need > have:
        raise ValueError(
            f"this run needs about {need:.1f} GB of {what} and this machine has {have:.1f} GB: lower batch_size "
            f"(now {config.training.batch_size}) or resolution (now {config.training.resolution}), turn on "
            "gradient_checkpointing, or use a GPU with mixed_precision fp16"
        )
    free = estimate.free_disk_gb(runs_root)
    if found.disk_gb > free:
        raise ValueError(
            f"this run writes about {found.disk_gb:.1f} GB ({found.checkpoints_kept} checkpoint(s) of "
            f"{found.checkpoint_gb:.1f} GB kept, and its exports) and {runs_root} has {free:.1f} GB free: lower "
            f"keep_checkpoints (now {config.training.keep_checkpoints}) or free some disk"
        )


def check_run(config: RunConfig, image_count: int, runs_root: Path) -> Estimate | None:
    """Every check above, cheapest first; returns the estimate they were judged on."""
    check_device(config.training)
    check_base_model(config.training)
    found = run_estimate(config, image_count, runs_root)
    check_fits(config, found, runs_root)
    return found
