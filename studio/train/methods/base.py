"""What the shared loop asks of every method (LoRA, DreamBooth, Textual Inversion, full fine-tune, SVDiff), and the
defaults of its optional hooks."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch


class TrainingMethod(Protocol):
    """Every call the shared loop (loop.py), the export (export.py) and its check (export_check.py) make on a
    method. The first group each method writes; the hooks after it have defaults in `MethodBase` that change
    nothing, so a method overrides only those it needs."""

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

    # ---------------------------------------------------------------- hooks (defaults in MethodBase)

    def prepare(self, trainer: Any) -> None:
        """Before any checkpoint is restored, with the base model loaded: a method's own data (class images)."""

    def parameter_groups(self, learning_rate: float) -> list[dict] | None:
        """Optimizer groups with their own learning rates (SVDiff's text encoder); None: one group."""

    def micro_batch_loss(self, trainer: Any, position: int) -> torch.Tensor | None:
        """A method's own micro-batch from pixels to loss (DreamBooth's two halves); None: the loop's."""

    def training_caption(self, seed: int, position: int, index: int, caption: str) -> str:
        """The prompt an image trains with, from its caption (Textual Inversion's templates)."""

    def after_optimizer_step(self, pipe: Any) -> None:
        """Right after each optimizer step (Textual Inversion restores the frozen rows; fine-tune's EMA)."""

    def inference_weights(self, pipe: Any) -> AbstractContextManager[None]:
        """The weights samples and exports draw with while the context is open (full fine-tune: EMA)."""

    def export_difference(self, pipe: Any, file: Path) -> float | None:
        """The largest difference between an exported file's tensors and the trained ones; None: cannot say."""

    def load_export(self, pipe: Any, file: Path) -> None:
        """Load an exported file into a fresh base pipeline, to check that it reloads as what was trained."""


class MethodBase:
    """The defaults of the loop's hooks (see TrainingMethod): each does nothing special."""

    config: Any
    export_check: str = "full"  # the run's training.export_check, set before export (a pipeline folder checks itself)

    def prepare(self, trainer: Any) -> None:
        return None

    def parameter_groups(self, learning_rate: float) -> list[dict] | None:
        return None

    def micro_batch_loss(self, trainer: Any, position: int) -> torch.Tensor | None:
        return None

    def training_caption(self, seed: int, position: int, index: int, caption: str) -> str:
        return caption

    def after_optimizer_step(self, pipe: Any) -> None:
        return None

    def inference_weights(self, pipe: Any) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def export_difference(self, pipe: Any, file: Path) -> float | None:
        return None

    def load_export(self, pipe: Any, file: Path) -> None:
        """LoRA weights, through diffusers' loader (the exports of methods whose facts say exports="lora")."""
        pipe.load_lora_weights(str(file.parent), weight_name=file.name)


class FrozenVaeMethod(MethodBase):
    """What every method so far shares: the VAE never learns (so latents may be cached), and the text encoder learns
    only when the method's config says `train_text_encoder` (else text embeddings may be cached)."""

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
