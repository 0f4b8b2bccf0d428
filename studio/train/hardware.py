"""Whether a config can train on this machine: fp16/bf16 and `device: cuda` need a GPU.

Asking here lets the Train tab warn before Start and offer the fix; `create_run` refuses such a config before it
writes anything (studio/train/preflight.py).
"""

from __future__ import annotations

import dataclasses

from studio.paths import is_pocket_model
from studio.train.config import RunConfig

CPU_FIX = "mixed_precision no"  # what the fix sets, in the words of the form's field


def gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


def trains_on_cpu(config: RunConfig, gpu: bool | None = None) -> bool:
    """The loop's own rule: device cpu, or auto on a machine without a CUDA GPU."""
    gpu = gpu_available() if gpu is None else gpu
    return config.training.device == "cpu" or (config.training.device == "auto" and not gpu)


def device_problem(config: RunConfig, gpu: bool | None = None) -> str | None:
    """One sentence when `config` cannot train here, saying what to change; None when it can."""
    training = config.training
    gpu = gpu_available() if gpu is None else gpu
    if training.device == "cuda" and not gpu:
        return "Device is cuda but this machine has no CUDA GPU: set Device to auto or cpu."
    if trains_on_cpu(config, gpu) and training.mixed_precision != "no":
        return (
            f"This preset trains in {training.mixed_precision} mixed precision, which needs a GPU, and this machine "
            "trains on the CPU: set Mixed precision to 'no' (Advanced), or press 'Train in full precision'."
        )
    return None


def device_warnings(config: RunConfig, gpu: bool | None = None) -> list[str]:
    """What the Train tab says about this machine before Start: the problem that stops the run, then a model too
    big for a CPU (it runs, for days)."""
    gpu = gpu_available() if gpu is None else gpu
    found = [problem] if (problem := device_problem(config, gpu)) else []
    if trains_on_cpu(config, gpu) and not is_pocket_model(config.training.base_model):
        found.append(
            f"No GPU here: {config.training.base_model} trains on the CPU for hours to days (the memory below is "
            "a GPU rule of thumb). The pocket presets train in about a minute."
        )
    return found


def for_this_machine(config: RunConfig, gpu: bool | None = None) -> RunConfig:
    """`config` with what keeps it off this machine changed: full precision on a CPU, device auto without a GPU."""
    training = config.training
    gpu = gpu_available() if gpu is None else gpu
    device = "auto" if training.device == "cuda" and not gpu else training.device
    changed = dataclasses.replace(training, device=device)
    if trains_on_cpu(dataclasses.replace(config, training=changed), gpu):
        changed = dataclasses.replace(changed, mixed_precision="no")
    return dataclasses.replace(config, training=changed)
