"""What the shared loop asks of every method (LoRA, DreamBooth, Textual Inversion, full fine-tune)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch


class TrainingMethod(Protocol):
    name: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, config: Any) -> None: ...

    def setup(self, pipe: Any) -> list[torch.nn.Parameter]:
        """Make the right parts of `pipe` trainable (and only those); return the parameters to optimise."""

    @property
    def trains_text_encoder(self) -> bool:
        """If False the loop may cache text embeddings."""

    @property
    def trains_vae(self) -> bool:
        """If False the loop may cache latents."""

    def trainable_state_dict(self, pipe: Any) -> dict[str, torch.Tensor]:
        """Exactly the trained weights: what a checkpoint stores and a resume restores."""

    def load_trainable_state_dict(self, pipe: Any, state: dict[str, torch.Tensor]) -> None: ...

    def export(self, pipe: Any, outputs: Path) -> list[Path]:
        """Write the user-facing files (safetensors only), each checked by reloading; return their paths."""


class FrozenVaeMethod:
    """What every method so far shares: the VAE never learns (so latents may be cached), and the text encoder learns
    only when the method's config says `train_text_encoder` (else text embeddings may be cached)."""

    config: Any

    @property
    def trains_text_encoder(self) -> bool:
        return self.config.train_text_encoder

    @property
    def trains_vae(self) -> bool:
        return False


# ------------------------------------------------------------------ shared by the methods' checkpoint functions


def parameters_state_dict(params: dict[str, torch.nn.Parameter]) -> dict[str, torch.Tensor]:
    """Detached copies (safetensors refuses shared storage) of the named trained parameters."""
    return {name: p.detach().clone().contiguous() for name, p in params.items()}


def unfreeze_whole_unet(pipe: Any, train_text_encoder: bool, method: str) -> None:
    """DreamBooth and full fine-tune: the whole UNet learns (the text encoder too if asked), the rest is frozen."""
    sdxl = getattr(pipe, "text_encoder_2", None) is not None
    if train_text_encoder and sdxl:
        raise ValueError(
            f"{method}: train_text_encoder is not supported on SDXL yet (two text encoders); leave it off, "
            "or use LoRA, whose train_text_encoder adapts both"
        )
    if sdxl:
        pipe.text_encoder_2.requires_grad_(False)
    pipe.vae.requires_grad_(False)
    pipe.text_encoder.requires_grad_(train_text_encoder)
    pipe.unet.requires_grad_(True)
    # the trained weights are the master copy: float32 even when the frozen parts run in half precision
    pipe.unet.to(torch.float32)
    if train_text_encoder:
        pipe.text_encoder.to(torch.float32)


def load_parameters(params: dict[str, torch.nn.Parameter], state: dict[str, torch.Tensor], what: str) -> None:
    """Copy a checkpoint into the named parameters, refusing one that holds other names."""
    if set(params) != set(state):
        missing, extra = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        raise ValueError(f"checkpoint does not match this {what} (missing {missing[:3]}, unexpected {extra[:3]})")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(state[name])


# Optional hooks the loop calls when a method has them (Textual Inversion does):
#   training_caption(seed, position, index, caption) -> str   the prompt for a sample, from its dataset caption
#   after_optimizer_step(pipe) -> None                 runs right after each optimizer step
#   load_export(pipe, file) -> None                    loads an exported file into a fresh pipeline to verify it
#   inference_weights(pipe) -> context manager         the weights samples and exports use (full fine-tune: EMA)
#   parameter_groups(learning_rate) -> list[dict]      optimizer groups with their own lr (SVDiff's text encoder)
