"""LoRA and its peft variants (DoRA, LoHa, LoKr): a typed config with help text and strict validation."""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.train.config import MAX_LORA_RANK, at_most, check_numbers, choice, non_negative, positive

VARIANTS = ("lora", "dora", "loha", "lokr")
UNET_ATTENTION = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_ENCODER_ATTENTION = ["q_proj", "k_proj", "v_proj", "out_proj"]


@dataclass
class LoraConfig:
    variant: str = field(
        default="lora",
        metadata={"help": "lora, dora (weight-decomposed LoRA), loha (Hadamard product) or lokr (Kronecker)."},
    )
    rank: int = field(default=16, metadata={"help": "Rank of the low-rank update: capacity of the adapter."})
    alpha: float = field(
        default=16.0, metadata={"help": "Scale of the update is alpha / rank; alpha = rank means a scale of 1."}
    )
    dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter's input during training."})
    target_modules: list[str] = field(
        default_factory=lambda: list(UNET_ATTENTION),
        metadata={"help": "UNet modules that get an adapter (default: the attention projections)."},
    )
    train_text_encoder: bool = field(
        default=False, metadata={"help": "Also adapt the text encoder's attention (no cached text embeddings)."}
    )
    text_encoder_target_modules: list[str] = field(
        default_factory=lambda: list(TEXT_ENCODER_ATTENTION),
        metadata={"help": "Text-encoder modules that get an adapter when train_text_encoder is on."},
    )
    export_kohya: bool = field(
        default=True, metadata={"help": "Also export one kohya/A1111/ComfyUI file (lora and dora only)."}
    )

    def __post_init__(self) -> None:
        check_numbers(self)
        choice(self, "variant", VARIANTS)
        positive(self, "rank", "alpha")
        at_most(self, "rank", MAX_LORA_RANK)
        non_negative(self, "dropout")
        if isinstance(self.rank, bool) or not isinstance(self.rank, int):
            raise ValueError(f"rank must be an integer, got {self.rank!r}")
        if self.dropout >= 1:
            raise ValueError(f"dropout must be below 1, got {self.dropout}")
        for name in ("target_modules", "text_encoder_target_modules"):
            value = getattr(self, name)
            if not isinstance(value, list) or not value or not all(isinstance(m, str) and m for m in value):
                raise ValueError(f"{name} must be a non-empty list of module names")
        if self.variant in ("loha", "lokr") and self.train_text_encoder:
            raise ValueError(f"train_text_encoder is only supported with lora and dora, not {self.variant}")
