"""The toy method for the shared loop: one layer's biases learn; the export is them alone, reloaded to check it.
Every optional hook keeps MethodBase's default."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file

from studio.train.methods.base import FrozenVaeMethod, load_parameters, parameters_state_dict
from toy_method import EXPORT_FILE, NAME
from toy_method.config import ToyBiasConfig


class ToyBiasMethod(FrozenVaeMethod):
    name: ClassVar[str] = NAME
    config_class: ClassVar[type] = ToyBiasConfig

    def __init__(self, config: ToyBiasConfig) -> None:
        self.config = config

    def setup(self, pipe: Any) -> list[torch.nn.Parameter]:
        for part in (pipe.unet, pipe.vae, pipe.text_encoder):
            part.requires_grad_(False)
        bias = self.parameters(pipe)[f"unet.{self.config.layer}.bias"]
        bias.data = bias.data.float()
        bias.requires_grad_(True)
        return [bias]

    def parameters(self, pipe: Any) -> dict[str, torch.nn.Parameter]:
        return {f"unet.{self.config.layer}.bias": pipe.unet.get_submodule(self.config.layer).bias}

    def trainable_state_dict(self, pipe: Any) -> dict[str, torch.Tensor]:
        return parameters_state_dict(self.parameters(pipe))

    def load_trainable_state_dict(self, pipe: Any, state: dict[str, torch.Tensor]) -> None:
        load_parameters(self.parameters(pipe), state, "toy bias")

    def export(self, pipe: Any, outputs: Path) -> list[Path]:
        path = outputs / EXPORT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(self.trainable_state_dict(pipe), str(path))
        return [path]

    def load_export(self, pipe: Any, file: Path) -> None:
        self.load_trainable_state_dict(pipe, load_file(str(file)))
