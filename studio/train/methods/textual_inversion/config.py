"""Textual Inversion: a new placeholder token whose embedding rows are the only thing that learns."""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.train.config import check_numbers, choice

LEARNABLE_PROPERTIES = ("object", "style", "caption")
MAX_VECTORS = 16


@dataclass
class TextualInversionConfig:
    placeholder_token: str = field(
        default="<concept>",
        metadata={"help": "The new word the concept is learnt into, e.g. <shape-x>; must not be a token already."},
    )
    initializer_token: str = field(
        default="shape",
        metadata={"help": "An existing one-token word whose embedding the new rows start from (e.g. 'toy', 'art')."},
    )
    num_vectors: int = field(
        default=1,
        metadata={"help": "Embedding vectors behind the placeholder (1-16): more capacity, slower to learn."},
    )
    learnable_property: str = field(
        default="object",
        metadata={
            "help": "object ('a photo of a {}') or style ('a painting in the style of {}') prompt templates, or "
            "caption: each image's own caption with its trigger word replaced by the new word, so the words that "
            "describe the rest of the image (its background, its colour) keep that part out of the embedding"
        },
    )
    trigger: str = field(
        default="",
        metadata={
            "help": "With learnable_property caption: the word in the captions that stands for the concept "
            "(presets write <trigger>, the dataset's trigger word, filled in at the start)."
        },
    )
    export_a1111: bool = field(
        default=True, metadata={"help": "Also export an AUTOMATIC1111 / ComfyUI embedding (emb_params)."}
    )

    def __post_init__(self) -> None:
        check_numbers(self)
        choice(self, "learnable_property", LEARNABLE_PROPERTIES)
        if isinstance(self.num_vectors, bool) or not isinstance(self.num_vectors, int):
            raise ValueError(f"num_vectors must be an integer, got {self.num_vectors!r}")
        if not 1 <= self.num_vectors <= MAX_VECTORS:
            raise ValueError(f"num_vectors must be between 1 and {MAX_VECTORS}, got {self.num_vectors}")
        for name in ("placeholder_token", "initializer_token"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
                raise ValueError(f"{name} must be one word without spaces, got {value!r}")
        if any(c in self.placeholder_token for c in '/\\:*?"|'):
            raise ValueError(f"placeholder_token must not contain path characters, got {self.placeholder_token!r}")
        if self.learnable_property == "caption" and not self.trigger.strip():
            raise ValueError("learnable_property caption needs the captions' trigger word in 'trigger'")
        if self.placeholder_token == self.initializer_token:
            raise ValueError("placeholder_token must differ from initializer_token")
