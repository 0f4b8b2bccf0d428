"""LoRA (and DoRA, LoHa, LoKr) through peft on the UNet's attention, optionally the text encoder's too."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from studio.adapters import kohya, lora_files
from studio.runs.layout import KOHYA_FILE, LORA_FOLDER
from studio.train.methods.base import FrozenVaeMethod, load_parameters, parameters_state_dict
from studio.train.methods.lora.config import LoraConfig


def peft_config(config: LoraConfig, target_modules: list[str]):
    """The peft config for one model; init so the adapter starts as a no-op (the base model is unchanged)."""
    import peft

    if config.variant == "loha":
        return peft.LoHaConfig(
            r=config.rank, alpha=config.alpha, module_dropout=config.dropout, target_modules=target_modules
        )
    if config.variant == "lokr":
        return peft.LoKrConfig(
            r=config.rank, alpha=config.alpha, module_dropout=config.dropout, target_modules=target_modules
        )
    return peft.LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=target_modules,
        init_lora_weights="gaussian",  # kohya/diffusers examples: A gaussian, B zero
        use_dora=config.variant == "dora",
    )


def text_encoders(pipe: Any) -> list[torch.nn.Module]:
    return [e for e in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if e is not None]


def _trainable(module: torch.nn.Module, prefix: str) -> dict[str, torch.nn.Parameter]:
    return {f"{prefix}.{name}": p for name, p in module.named_parameters() if p.requires_grad}


class LoraMethod(FrozenVaeMethod):
    name: ClassVar[str] = "lora"
    config_class: ClassVar[type] = LoraConfig

    def __init__(self, config: LoraConfig) -> None:
        self.config = config

    def setup(self, pipe: Any) -> list[torch.nn.Parameter]:
        # freeze everything first: only the adapter weights peft adds below may learn
        for part in (pipe.unet, pipe.vae, *text_encoders(pipe)):
            part.requires_grad_(False)
        pipe.unet.add_adapter(peft_config(self.config, self.config.target_modules))
        if self.config.train_text_encoder:
            for encoder in text_encoders(pipe):  # SDXL has two; both learn, as in diffusers' SDXL LoRA script
                encoder.add_adapter(peft_config(self.config, self.config.text_encoder_target_modules))
        params = list(self.parameters(pipe).values())
        if not params:
            raise ValueError(f"target_modules matched nothing that can be trained: {self.config.target_modules}")
        # adapters train in float32 even when the frozen base runs in half precision (diffusers' cast_training_params)
        for param in params:
            param.data = param.data.float()
        return params

    def parameters(self, pipe: Any) -> dict[str, torch.nn.Parameter]:
        params = _trainable(pipe.unet, "unet")
        if self.config.train_text_encoder:
            params.update(_trainable(pipe.text_encoder, "text_encoder"))
            if getattr(pipe, "text_encoder_2", None) is not None:
                params.update(_trainable(pipe.text_encoder_2, "text_encoder_2"))
        return params

    def trainable_state_dict(self, pipe: Any) -> dict[str, torch.Tensor]:
        return parameters_state_dict(self.parameters(pipe))

    def load_trainable_state_dict(self, pipe: Any, state: dict[str, torch.Tensor]) -> None:
        load_parameters(self.parameters(pipe), state, "adapter")

    def export(self, pipe: Any, outputs: Path) -> list[Path]:
        if self.config.variant in ("loha", "lokr"):
            return [lora_files.save_peft_adapter(pipe, outputs / "peft")]
        files = [lora_files.save_lora_diffusers(pipe, outputs / LORA_FOLDER)]
        if self.config.export_kohya and self.config.variant == "lora":
            files.append(kohya.save_lora_kohya(pipe, outputs / KOHYA_FILE))
        return files
