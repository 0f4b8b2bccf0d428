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

from studio.runs.checkpoints import building_folder


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

    # the same device choice as the trainer's Accelerator (the state is shared): DeepSpeed never with cpu=True
    state = PartialState(cpu=uses_cpu(device) and not deepspeed_requested())
    check_process_count(state.num_processes)
    box = [str(create()) if state.is_main_process else None]
    broadcast_object_list(box)
    return Path(box[0])


def check_process_count(seen: int) -> None:
    """Refuse a launch whose processes do not see each other: each would train alone and write the same run
    (accelerate 1.15 does this with DeepSpeed on a machine without a GPU: every process is process 0 of 1)."""
    if seen != launched_processes():
        raise ValueError(
            f"{launched_processes()} processes were launched but accelerate sees {seen}"
            + (" (DeepSpeed without a GPU runs one process only)" if deepspeed_requested() else "")
            + "; launch one process (num_processes: 1)"
        )


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


# ------------------------------------------------------------------ DeepSpeed ZeRO-2 (configs/accelerate/)

DEEPSPEED_CONFIG = "configs/accelerate/deepspeed-zero2-offload.yaml"
# where a checkpoint keeps DeepSpeed's own files (its optimizer partitions), and the tag it saves them under
DEEPSPEED_FOLDER = "deepspeed"
DEEPSPEED_TAG = "zero"


def deepspeed_requested() -> bool:
    """`accelerate launch` with a DeepSpeed config (ours: DEEPSPEED_CONFIG) tells its processes through this."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def require_deepspeed() -> None:
    """A clear message before accelerate fails deep inside its setup."""
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        raise ValueError(
            f"this launch asks for DeepSpeed (an accelerate config such as {DEEPSPEED_CONFIG}), but the deepspeed "
            "package is not installed: pip install deepspeed (or pip install -e '.[deepspeed]'), or launch "
            "without that config"
        )


def refuse_unsupported(accelerator: Any, pipe: Any, params: list, method: str) -> None:
    """FSDP is refused; DeepSpeed only where one module (the UNet) holds everything that learns, since
    accelerate hands DeepSpeed one model together with its optimizer."""
    kind = accelerator.distributed_type.value
    if kind == "FSDP":
        # its sharded weights and optimizer need accelerate's own checkpoints and exports; not built here
        raise ValueError(
            "FSDP is not supported; launch with plain data parallelism (accelerate launch --multi_gpu), "
            f"DeepSpeed ({DEEPSPEED_CONFIG}), or one process"
        )
    if kind != "DEEPSPEED":
        return
    stage = accelerator.state.deepspeed_plugin.zero_stage
    if stage not in (1, 2):
        # ZeRO-3 shards the weights themselves: samples, checkpoints and exports would read a shard
        raise ValueError(f"DeepSpeed ZeRO stage {stage} is not supported; use stage 2 ({DEEPSPEED_CONFIG})")
    unet = {id(p) for p in pipe.unet.parameters()}
    if any(id(p) not in unet for p in params):
        raise ValueError(
            f"{method} trains more than the UNet here (the text encoder or new token rows); under DeepSpeed "
            "only the UNet can learn: turn train_text_encoder off, or launch without DeepSpeed"
        )


def configure_deepspeed(
    accelerator: Any, batch_size: int, gradient_accumulation: int, max_grad_norm: float, mixed_precision: str
) -> None:
    """The run's config decides batch, accumulation and clipping; the launch config only how memory is split.

    accelerate fills these from a DataLoader, which this loop does not have, so they are set before prepare."""
    launched = os.environ.get("ACCELERATE_MIXED_PRECISION")
    if launched is not None and launched != mixed_precision:
        # the run's value would silently win (fp32 weights and gradients do not fit where fp16 was planned)
        raise ValueError(
            f"the launch config asks for mixed_precision {launched} but the run's config has {mixed_precision}; "
            f"set mixed_precision={launched} in the run (--set mixed_precision={launched}) or change the launch config"
        )
    config = accelerator.state.deepspeed_plugin.deepspeed_config
    config["train_micro_batch_size_per_gpu"] = batch_size
    config["gradient_accumulation_steps"] = gradient_accumulation
    config["train_batch_size"] = batch_size * gradient_accumulation * accelerator.num_processes
    # DeepSpeed clips inside its step (accelerator.clip_grad_norm_ only reads the norm there); 0 = no clipping
    config["gradient_clipping"] = float(max_grad_norm)
    accelerator.gradient_accumulation_steps = gradient_accumulation


def save_deepspeed_checkpoint(accelerator: Any, engine: Any, run_dir: Path, step: int) -> Path:
    """Every process writes its partition of the optimizer state (and DeepSpeed its fp32 master weights) into
    one hidden checkpoint folder, made by the main process; returns that folder for the main process to finish.

    These are DeepSpeed's own torch files, read back only by DeepSpeed on resume; the user-facing weights of the
    checkpoint stay in trainable.safetensors."""
    box = [str(building_folder(run_dir, step)) if accelerator.is_main_process else None]
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(box)
    building = Path(box[0])
    engine.save_checkpoint(str(building / DEEPSPEED_FOLDER), tag=DEEPSPEED_TAG, save_latest=False)
    accelerator.wait_for_everyone()
    return building


def load_deepspeed_checkpoint(engine: Any, folder: Path) -> None:
    """The optimizer partitions and master weights that save_deepspeed_checkpoint wrote (every process its own)."""
    source = folder / DEEPSPEED_FOLDER
    if not (source / DEEPSPEED_TAG).is_dir():
        raise ValueError(f"{folder.name} has no DeepSpeed state ({DEEPSPEED_FOLDER}/{DEEPSPEED_TAG}); start a new run")
    # the learning-rate schedule is ours (in training_state.pt), not DeepSpeed's
    path, _ = engine.load_checkpoint(
        str(source), tag=DEEPSPEED_TAG, load_optimizer_states=True, load_lr_scheduler_states=False
    )
    if path is None:
        raise ValueError(f"DeepSpeed could not load the optimizer state of {folder.name}; start a new run")
