"""The toy method's config: which layer's biases learn."""

from __future__ import annotations

from dataclasses import dataclass, field

LAYERS = ("conv_out", "conv_in")


@dataclass
class ToyBiasConfig:
    layer: str = field(default="conv_out", metadata={"help": "The UNet layer whose biases learn."})
    train_text_encoder: bool = field(default=False, metadata={"help": "Always off: the text encoder never learns."})

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {self.layer!r}")
        if self.train_text_encoder:
            raise ValueError("train_text_encoder is not supported by the toy method")
