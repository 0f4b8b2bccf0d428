"""Several processes, one run: `accelerate launch` (or torchrun) on several GPUs, or several CPU processes.

Every process trains on its own share of the data; gradients are averaged across processes after each optimizer
step's micro-batches, so every process applies the same update and the weights stay identical. Only the main
process writes the run folder (events, checkpoints, samples, exports); commands it reads are broadcast to the
others, so all of them stop at the same step. One process (the usual case) takes none of these paths.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def launched_processes() -> int:
    """How many processes a launcher started (accelerate launch and torchrun set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def uses_cpu(device: str) -> bool:
    import torch

    return device == "cpu" or (device == "auto" and not torch.cuda.is_available())


def shared_run_dir(create: Callable[[], Path], device: str) -> Path:
    """The main process creates the run folder; the others learn its path from it."""
    if launched_processes() == 1:
        return create()
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState(cpu=uses_cpu(device))
    box = [str(create()) if state.is_main_process else None]
    broadcast_object_list(box)
    return Path(box[0])


def broadcast_commands(accelerator: Any, commands: set[str]) -> set[str]:
    """The main process's commands, for every process (each one polling on its own could stop at another step)."""
    if accelerator.num_processes == 1:
        return commands
    from accelerate.utils import broadcast_object_list

    box = [sorted(commands) if accelerator.is_main_process else None]
    broadcast_object_list(box)
    return set(box[0])


def average_gradients(accelerator: Any, params: list) -> None:
    """Every process ends with the mean gradient over all processes' micro-batches: the same update everywhere."""
    if accelerator.num_processes == 1:
        return
    for param in params:
        if param.grad is not None:
            param.grad.copy_(accelerator.reduce(param.grad, reduction="mean"))


def weights_in_sync(accelerator: Any, params: list) -> bool:
    """A cheap check that every process holds the same weights (a checksum per process, gathered)."""
    import torch

    if accelerator.num_processes == 1:
        return True
    checksum = torch.stack([p.detach().double().sum() for p in params]).sum().reshape(1)
    gathered = accelerator.gather(checksum.to(accelerator.device))
    return bool(torch.allclose(gathered, gathered[0].expand_as(gathered), rtol=1e-9, atol=0.0))
