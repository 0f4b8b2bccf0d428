"""SVDiff (spectral shifts, Han et al. 2023): which layers get a shift of their singular values, and how fast."""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.runs.layout import SVDIFF_FILE
from studio.train.config import check_numbers, non_negative

# every Linear and Conv2d of a transformer block and a resnet block: the paper shifts all of the UNet's weights
UNET_TARGETS = [
    "to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out",
    "conv1", "conv2", "conv_shortcut", "time_emb_proj",
]  # fmt: skip
TEXT_ENCODER_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
EXPORT_FILE = SVDIFF_FILE  # in outputs/ (studio.runs.layout names every file of a run)


@dataclass
class SvdiffConfig:
    target_modules: list[str] = field(
        default_factory=lambda: list(UNET_TARGETS),
        metadata={
            "help": "UNet layers (Linear or Conv2d, by name or name ending) whose singular values get a learnt "
            "shift. Default: attention, feed-forward and resnet layers. The learning rate is the training one: "
            "shifts want about 1000x a full fine-tune's (1e-3 on SD 1.5)."
        },
    )
    train_text_encoder: bool = field(
        default=False, metadata={"help": "Also shift the text encoder's singular values (no cached text)."}
    )
    text_encoder_target_modules: list[str] = field(
        default_factory=lambda: list(TEXT_ENCODER_TARGETS),
        metadata={"help": "Text-encoder layers that get shifts when train_text_encoder is on."},
    )
    text_encoder_learning_rate: float = field(
        default=0.0,
        metadata={"help": "Learning rate of the text encoder's shifts; 0 means the same as learning_rate."},
    )

    def __post_init__(self) -> None:
        check_numbers(self)
        non_negative(self, "text_encoder_learning_rate")
        for name in ("target_modules", "text_encoder_target_modules"):
            value = getattr(self, name)
            if not isinstance(value, list) or not value or not all(isinstance(m, str) and m for m in value):
                raise ValueError(f"{name} must be a non-empty list of module names")
