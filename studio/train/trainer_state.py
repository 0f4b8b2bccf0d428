"""A running trainer: what it holds (`Trainer`), what a checkpoint keeps of it (trainable weights, optimizer,
schedule, every random state) and putting that back, so a resumed run repeats the steps it would have taken."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from studio import runs
from studio.runs.checkpoints import restore_rng_state, rng_state_json
from studio.train import distributed
from studio.train.conditioning import Caches
from studio.train.config import RunConfig, TrainingConfig
from studio.train.data import TrainingImage


@dataclass
class Trainer:
    """Everything a running loop holds. Built by `prepare_trainer`; `train` runs it."""

    run_dir: Path
    config: RunConfig
    pipe: Any
    method: Any
    noise_scheduler: Any
    items: list[TrainingImage]
    accelerator: Any
    optimizer: Any
    lr_scheduler: Any
    params: list[torch.nn.Parameter]
    generator: torch.Generator
    caches: Caches | None
    text_caches: Caches
    step: int = 0
    on_event: Callable[[dict], None] | None = None
    # commands count from the moment this process began preparing: a cancel sent while the model loads still counts
    watcher: runs.CommandWatcher | None = None
    # the DeepSpeed engine around pipe.unet when launched with a DeepSpeed config (distributed.py), else None
    engine: Any = None

    @property
    def training(self) -> TrainingConfig:
        return self.config.training

    def emit(self, kind: str, **fields: Any) -> dict:
        if not self.accelerator.is_main_process:  # one writer per run folder (see distributed.py)
            return {"type": kind, **fields}
        event = runs.append_event(self.run_dir, kind, **fields)
        if self.on_event:
            self.on_event(event)
        return event


def checkpoint_state(trainer: Trainer) -> dict:
    # under DeepSpeed each process holds only its partition of the optimizer state: DeepSpeed writes it (save)
    optimizer = {} if trainer.engine is not None else {"optimizer": trainer.optimizer.state_dict()}
    return {
        "step": trainer.step,
        "trainable": trainer.method.trainable_state_dict(trainer.pipe),
        "torch": {
            **optimizer,
            "lr_scheduler": trainer.lr_scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "generator": trainer.generator.get_state(),
        },
        "json": {
            "step": trainer.step,
            "position": trainer.step * trainer.training.gradient_accumulation,
            **rng_state_json(),
        },
    }


def restore(trainer: Trainer, state: dict, folder: Path) -> None:
    written_by_deepspeed = "optimizer" not in state["torch"]
    if written_by_deepspeed != (trainer.engine is not None):
        raise ValueError(
            f"{folder.name} was written {'with' if written_by_deepspeed else 'without'} DeepSpeed; resume it the "
            f"same way ({'with' if written_by_deepspeed else 'without'} {distributed.DEEPSPEED_CONFIG})"
        )
    trainer.method.load_trainable_state_dict(trainer.pipe, state["trainable"])
    if trainer.engine is not None:
        distributed.load_deepspeed_checkpoint(trainer.engine, folder)
    else:
        trainer.optimizer.load_state_dict(state["torch"]["optimizer"])
    trainer.lr_scheduler.load_state_dict(state["torch"]["lr_scheduler"])
    torch.set_rng_state(state["torch"]["torch_rng"])
    trainer.generator.set_state(state["torch"]["generator"])
    restore_rng_state(state["json"])
    trainer.step = state["json"]["step"]
