"""What a checkpoint holds of a running trainer (trainable weights, optimizer, schedule, every random state) and
putting it back, so a resumed run repeats the steps it would have taken."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from studio.runs.checkpoints import restore_rng_state, rng_state_json
from studio.train import distributed

if TYPE_CHECKING:
    from studio.train.loop import Trainer


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
