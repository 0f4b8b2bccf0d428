"""Full fine-tune: the whole UNet (optionally the text encoder) learns from the dataset's own captions.

The loop's default batches apply: each image with its caption, so a folder of captioned images teaches a
style or a domain. With `use_ema` an exponential moving average of the UNet (diffusers' EMAModel) follows the
weights after every optimizer step; samples and the exported pipeline use the average, checkpoints hold both,
so a resumed run continues the same average.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch

from studio.models import load_pipeline, save_single_file
from studio.train.methods.base import FrozenVaeMethod, load_parameters, parameters_state_dict, unfreeze_whole_unet
from studio.train.methods.dreambooth.method import save_pipeline
from studio.train.methods.finetune.config import FinetuneConfig

PIPELINE_FOLDER = "pipeline"
SINGLE_FILE = "model.safetensors"
EMA_PREFIX = "ema."
EMA_STEP = "ema_optimization_step"


class FinetuneMethod(FrozenVaeMethod):
    name: ClassVar[str] = "finetune"
    config_class: ClassVar[type] = FinetuneConfig

    def __init__(self, config: FinetuneConfig) -> None:
        self.config = config
        self.ema: Any = None

    # ---------------------------------------------------------------- what learns

    def setup(self, pipe: Any) -> list[torch.nn.Parameter]:
        unfreeze_whole_unet(pipe, self.config.train_text_encoder, self.name)
        if self.config.use_ema:
            from diffusers.training_utils import EMAModel

            # warmup: the decay grows with the step, so early weights are not averaged in for long
            self.ema = EMAModel(
                pipe.unet.parameters(), decay=self.config.ema_decay, use_ema_warmup=True, power=self.config.ema_power
            )
        return list(self.parameters(pipe).values())

    def parameters(self, pipe: Any) -> dict[str, torch.nn.Parameter]:
        params = {f"unet.{n}": p for n, p in pipe.unet.named_parameters()}
        if self.config.train_text_encoder:
            params.update({f"text_encoder.{n}": p for n, p in pipe.text_encoder.named_parameters()})
        return params

    def after_optimizer_step(self, pipe: Any) -> None:
        if self.ema is not None:
            self.ema.step(pipe.unet.parameters())

    # ---------------------------------------------------------------- checkpoints: weights, and the average too

    def trainable_state_dict(self, pipe: Any) -> dict[str, torch.Tensor]:
        state = parameters_state_dict(self.parameters(pipe))
        if self.ema is not None:
            names = [n for n, _ in pipe.unet.named_parameters()]
            for name, shadow in zip(names, self.ema.shadow_params):
                state[f"{EMA_PREFIX}unet.{name}"] = shadow.detach().clone().contiguous()
            state[EMA_STEP] = torch.tensor(self.ema.optimization_step, dtype=torch.int64)
        return state

    def load_trainable_state_dict(self, pipe: Any, state: dict[str, torch.Tensor]) -> None:
        weights = {k: v for k, v in state.items() if not k.startswith(EMA_PREFIX) and k != EMA_STEP}
        load_parameters(self.parameters(pipe), weights, "model")
        if self.ema is None:
            return
        names = [n for n, _ in pipe.unet.named_parameters()]
        if EMA_STEP not in state or any(f"{EMA_PREFIX}unet.{n}" not in state for n in names):
            raise ValueError("this checkpoint has no EMA weights; resume with use_ema off or start a new run")
        with torch.no_grad():
            for name, shadow in zip(names, self.ema.shadow_params):
                shadow.copy_(state[f"{EMA_PREFIX}unet.{name}"])
        self.ema.optimization_step = int(state[EMA_STEP])

    @contextlib.contextmanager
    def inference_weights(self, pipe: Any) -> Iterator[None]:
        """Samples and exports draw with the EMA weights when there are any; training continues on the raw ones."""
        if self.ema is None:
            yield
            return
        self.ema.store(pipe.unet.parameters())
        self.ema.copy_to(pipe.unet.parameters())
        try:
            yield
        finally:
            self.ema.restore(pipe.unet.parameters())

    # ---------------------------------------------------------------- outputs

    def export(self, pipe: Any, outputs: Path) -> list[Path]:
        folder = outputs / PIPELINE_FOLDER
        prompt = ""  # any prompt checks the reload; the loop's own check uses the run's sample prompt
        with self.inference_weights(pipe):
            save_pipeline(pipe, folder, prompt, self.export_check)
            files = [folder]
            if self.config.export_single_file:
                files.append(save_single_file(pipe, outputs / SINGLE_FILE))
        return files

    def load_export(self, pipe: Any, file: Path) -> None:
        """Verification of the single file: load it (configs from the exported folder) into a fresh pipeline."""
        loaded = load_pipeline(
            str(file), device="cpu", dtype=torch.float32, config_folder=file.parent / PIPELINE_FOLDER
        )
        for part in ("unet", "text_encoder", "vae"):
            getattr(pipe, part).load_state_dict(getattr(loaded.pipe, part).state_dict())
