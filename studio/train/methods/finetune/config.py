"""Full fine-tune on a captioned dataset (e.g. hundreds of images that teach a style): a typed config."""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.train.config import check_numbers, positive


@dataclass
class FinetuneConfig:
    train_text_encoder: bool = field(
        default=False,
        metadata={"help": "Also fine-tune the text encoder (learns new words better; more memory, no cached text)."},
    )
    use_ema: bool = field(
        default=False,
        metadata={
            "help": "Keep an exponential moving average of the UNet's weights and use it for samples and the "
            "exported model: smoother, usually better results, at the cost of one more copy of the UNet in memory."
        },
    )
    ema_decay: float = field(
        default=0.9999,
        metadata={"help": "Largest EMA decay; it warms up from 0, so short runs average over fewer steps."},
    )
    ema_power: float = field(
        default=0.75,
        metadata={"help": "EMA warmup power: 2/3 suits runs of a million steps, 3/4 shorter ones (diffusers' EMA)."},
    )
    export_single_file: bool = field(
        default=False,
        metadata={"help": "Also write one .safetensors checkpoint for the A1111 web UI / ComfyUI (SD 1.x and 2.x)."},
    )

    def __post_init__(self) -> None:
        check_numbers(self)
        positive(self, "ema_decay", "ema_power")
        if not self.ema_decay < 1:
            raise ValueError(f"ema_decay must be below 1, got {self.ema_decay}")
