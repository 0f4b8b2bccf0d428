"""SVDiff: only a shift of each targeted weight's singular values learns (UNet, optionally the text encoder).

Tiny outputs (one number per singular value: ~1 MB for SD 1.5 against ~3 MB for a rank-4 LoRA, see
BENCHMARKS.md for the pocket model) and a scale that can be dialled at generation time.
The export is one `.safetensors` of the shifts; the loop's export check reloads it into a fresh pipeline with
`apply_spectral_shifts`, which recomputes the SVD of the base weights, and compares the images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from studio.adapters.svdiff import add_spectral_shifts, apply_spectral_shifts, save_shifts
from studio.train.methods.base import FrozenVaeMethod, load_parameters, parameters_state_dict
from studio.train.methods.svdiff.config import EXPORT_FILE, SvdiffConfig


def text_encoder_names(pipe: Any) -> list[str]:
    return [name for name in ("text_encoder", "text_encoder_2") if getattr(pipe, name, None) is not None]


class SvdiffMethod(FrozenVaeMethod):
    name: ClassVar[str] = "svdiff"
    config_class: ClassVar[type] = SvdiffConfig

    def __init__(self, config: SvdiffConfig) -> None:
        self.config = config
        self.shifts: dict = {}  # "<part>.<module>" -> SpectralShift (its .delta is what learns)
        self.base_model = ""  # recorded in the export's metadata

    def setup(self, pipe: Any) -> list[torch.nn.Parameter]:
        # freeze everything: the shifts added below are the only parameters that learn
        for part in ("unet", "vae", *text_encoder_names(pipe)):
            getattr(pipe, part).requires_grad_(False)
        self.shifts = add_spectral_shifts(pipe.unet, self.config.target_modules, "unet")
        if self.config.train_text_encoder:
            for part in text_encoder_names(pipe):  # SDXL: both encoders, as LoRA does
                self.shifts.update(
                    add_spectral_shifts(getattr(pipe, part), self.config.text_encoder_target_modules, part)
                )
        return list(self.parameters(pipe).values())

    def prepare(self, trainer: Any) -> None:
        self.base_model = trainer.training.base_model

    def parameter_groups(self, learning_rate: float) -> list[dict]:
        """The optimizer's groups: the text encoder's shifts may learn at their own rate (the paper's setup)."""
        unet = [s.delta for key, s in self.shifts.items() if key.startswith("unet.")]
        text = [s.delta for key, s in self.shifts.items() if not key.startswith("unet.")]
        groups = [{"params": unet, "lr": learning_rate}]
        if text:
            groups.append({"params": text, "lr": self.config.text_encoder_learning_rate or learning_rate})
        return groups

    def parameters(self, pipe: Any) -> dict[str, torch.nn.Parameter]:
        return {key: shift.delta for key, shift in self.shifts.items()}

    def trainable_state_dict(self, pipe: Any) -> dict[str, torch.Tensor]:
        return parameters_state_dict(self.parameters(pipe))

    def load_trainable_state_dict(self, pipe: Any, state: dict[str, torch.Tensor]) -> None:
        load_parameters(self.parameters(pipe), state, "SVDiff run (its target modules)")

    def export(self, pipe: Any, outputs: Path) -> list[Path]:
        metadata = {
            "method": self.name,
            "base_model": self.base_model,
            "targets": {
                "unet": self.config.target_modules,
                "text_encoder": self.config.text_encoder_target_modules if self.config.train_text_encoder else [],
            },
            # the weight shape of every shifted layer: a loader refuses a model whose layers differ
            "shapes": {key: list(shift.shape) for key, shift in self.shifts.items()},
        }
        return [save_shifts(outputs / EXPORT_FILE, self.trainable_state_dict(pipe), metadata)]

    def load_export(self, pipe: Any, file: Path) -> None:
        apply_spectral_shifts(pipe, file)
