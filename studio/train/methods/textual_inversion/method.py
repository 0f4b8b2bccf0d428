"""Textual Inversion (Gal et al. 2022) the way diffusers' example trains it.

A placeholder token (and, with several vectors, `<tok>_1`, `<tok>_2`, ...) is added to the tokenizer; its
embedding rows start as a copy of the initializer word's row. The whole input-embedding matrix is given to
the optimizer (it is one tensor), and after every optimizer step every other row is copied back from a saved
copy, so weight decay and Adam never move the original vocabulary: those rows stay bit-identical.
Training captions come from the "object" or "style" templates, with the placeholder expanded to all its vectors.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, ClassVar

import torch

from studio.runs.layout import EMBEDDING_FILE
from studio.train.methods.base import MethodBase
from studio.train.methods.textual_inversion.config import TextualInversionConfig

# diffusers examples/textual_inversion/textual_inversion.py: imagenet_templates_small
OBJECT_TEMPLATES = [
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a photo of a clean {}",
    "a photo of a dirty {}",
    "a dark photo of the {}",
    "a photo of my {}",
    "a photo of the cool {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a cropped photo of a {}",
    "a photo of the {}",
    "a good photo of the {}",
    "a photo of one {}",
    "a close-up photo of the {}",
    "a rendition of the {}",
    "a photo of the clean {}",
    "a rendition of a {}",
    "a photo of a nice {}",
    "a good photo of a {}",
    "a photo of the nice {}",
    "a photo of the small {}",
    "a photo of the weird {}",
    "a photo of the large {}",
    "a photo of a cool {}",
    "a photo of a small {}",
]
# ... and imagenet_style_templates_small
STYLE_TEMPLATES = [
    "a painting in the style of {}",
    "a rendering in the style of {}",
    "a cropped painting in the style of {}",
    "the painting in the style of {}",
    "a clean painting in the style of {}",
    "a dirty painting in the style of {}",
    "a dark painting in the style of {}",
    "a picture in the style of {}",
    "a cool painting in the style of {}",
    "a close-up painting in the style of {}",
    "a bright painting in the style of {}",
    "a good painting in the style of {}",
    "a close-up painting in the style of {}",
    "a rendition in the style of {}",
    "a nice painting in the style of {}",
    "a small painting in the style of {}",
    "a weird painting in the style of {}",
    "a large painting in the style of {}",
]
TEMPLATES = {"object": OBJECT_TEMPLATES, "style": STYLE_TEMPLATES}

DIFFUSERS_FILE = EMBEDDING_FILE  # the run layout names every file (studio.runs.layout)


def placeholder_tokens(config: TextualInversionConfig) -> list[str]:
    """`<tok>`, `<tok>_1`, ...: the names diffusers' loader and `maybe_convert_prompt` expect."""
    token = config.placeholder_token
    return [token] + [f"{token}_{i}" for i in range(1, config.num_vectors)]


def initializer_id(tokenizer: Any, word: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise ValueError(
            f"initializer_token {word!r} is {len(ids)} tokens ({' '.join(pieces)}), it must be exactly one; "
            "pick a single common word such as 'toy', 'shape' or 'art'"
        )
    if tokenizer.unk_token_id is not None and ids[0] == tokenizer.unk_token_id:
        raise ValueError(f"initializer_token {word!r} is not in the tokenizer's vocabulary")
    return ids[0]


def is_known_token(tokenizer: Any, word: str) -> bool:
    """A vocabulary entry, an added token, or a word the tokenizer already reads as one token ('dog' is 'dog</w>')."""
    if word in tokenizer.get_vocab():
        return True
    ids = tokenizer.encode(word, add_special_tokens=False)
    return len(ids) == 1 and ids[0] != tokenizer.unk_token_id


class TextualInversionMethod(MethodBase):
    name: ClassVar[str] = "textual_inversion"
    config_class: ClassVar[type] = TextualInversionConfig

    def __init__(self, config: TextualInversionConfig) -> None:
        self.config = config
        self.token_ids: list[int] = []
        self._original_rows: torch.Tensor | None = None  # the whole matrix as it was, to restore the other rows
        self._others: torch.Tensor | None = None  # mask of rows that must never change

    @property
    def trains_text_encoder(self) -> bool:
        return True  # the embedding learns: text embeddings are encoded every step, never cached

    @property
    def trains_vae(self) -> bool:
        return False

    def expand(self, text: str) -> str:
        """The placeholder written as all its vectors ('<tok> <tok>_1 ...'), as diffusers' loader does."""
        return text.replace(self.config.placeholder_token, " ".join(placeholder_tokens(self.config)))

    def training_caption(self, seed: int, position: int, index: int, caption: str = "") -> str:
        """The prompt for one sample: the image's caption with the trigger replaced by the new word (property
        'caption'), or a template prompt, a pure function of (seed, position, index) so resume repeats it."""
        if self.config.learnable_property == "caption" and caption:
            word = re.compile(rf"(?<![\w<>-]){re.escape(self.config.trigger)}(?![\w<>-])", re.IGNORECASE)
            if word.search(caption):
                return self.expand(word.sub(self.config.placeholder_token, caption))
            return self.expand(f"{self.config.placeholder_token}, {caption}")  # a caption without it: still taught
        templates = TEMPLATES.get(self.config.learnable_property, OBJECT_TEMPLATES)
        template = random.Random(f"{seed}:{position}:{index}").choice(templates)
        return self.expand(template.format(self.config.placeholder_token))

    def setup(self, pipe: Any) -> list[torch.nn.Parameter]:
        if getattr(pipe, "text_encoder_2", None) is not None:
            raise ValueError("textual_inversion supports SD 1.x and 2.x models for now, not SDXL (two text encoders)")
        tokenizer, text_encoder = pipe.tokenizer, pipe.text_encoder
        tokens = placeholder_tokens(self.config)
        existing = [t for t in tokens if is_known_token(tokenizer, t)]
        if existing:
            raise ValueError(f"placeholder_token {existing[0]!r} is already a token; choose a new word such as <my-x>")
        source = initializer_id(tokenizer, self.config.initializer_token)
        if tokenizer.add_tokens(tokens) != len(tokens):
            raise ValueError(f"placeholder_token {self.config.placeholder_token!r} could not be added to the tokenizer")
        self.token_ids = tokenizer.convert_tokens_to_ids(tokens)

        for part in (pipe.unet, pipe.vae, text_encoder):
            part.requires_grad_(False)
        # the embedding trains in float32, as in diffusers' example (the rest of the encoder follows it)
        text_encoder.to(torch.float32)
        text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # rows set below
        weight = text_encoder.get_input_embeddings().weight
        with torch.no_grad():
            weight[self.token_ids] = weight[source].clone()
        weight.requires_grad_(True)
        self._original_rows = weight.detach().clone()
        self._others = torch.ones(weight.shape[0], dtype=torch.bool, device=weight.device)
        self._others[self.token_ids] = False
        return [weight]

    def after_optimizer_step(self, pipe: Any) -> None:
        """Put every row but the placeholder's back: they are in the optimizer only because the matrix is one tensor."""
        weight = pipe.text_encoder.get_input_embeddings().weight
        with torch.no_grad():
            weight[self._others] = self._original_rows[self._others]

    def learned_embeds(self, pipe: Any) -> torch.Tensor:
        """[num_vectors, dim]: the placeholder's rows."""
        weight = pipe.text_encoder.get_input_embeddings().weight
        return weight[self.token_ids].detach().clone().contiguous()

    def trainable_state_dict(self, pipe: Any) -> dict[str, torch.Tensor]:
        # the token ids record the tokenizer additions: a resume must add the placeholder at the same ids
        return {"learned_embeds": self.learned_embeds(pipe), "token_ids": torch.tensor(self.token_ids)}

    def load_trainable_state_dict(self, pipe: Any, state: dict[str, torch.Tensor]) -> None:
        if set(state) != {"learned_embeds", "token_ids"} or state["token_ids"].tolist() != self.token_ids:
            raise ValueError(
                f"checkpoint does not match this placeholder ({self.config.placeholder_token!r} at ids "
                f"{self.token_ids}); was it saved by another method or tokenizer?"
            )
        weight = pipe.text_encoder.get_input_embeddings().weight
        with torch.no_grad():
            weight[self.token_ids] = state["learned_embeds"].to(weight)

    def export(self, pipe: Any, outputs: Path) -> list[Path]:
        from safetensors.torch import save_file

        outputs.mkdir(parents=True, exist_ok=True)
        embeds = self.learned_embeds(pipe).float()
        stem = self.config.placeholder_token.strip("<>") or "embedding"
        written = {outputs / DIFFUSERS_FILE: {self.config.placeholder_token: embeds}}
        if self.config.export_a1111:
            # AUTOMATIC1111 / ComfyUI: one tensor `emb_params`; the file name is the word used in prompts there
            (outputs / "a1111").mkdir(exist_ok=True)
            written[outputs / "a1111" / f"{stem}.safetensors"] = {"emb_params": embeds}
        for path, tensors in written.items():
            temporary = path.with_name(f".{path.name}.tmp")
            save_file(tensors, str(temporary))
            temporary.replace(path)
        return list(written)

    def export_difference(self, pipe: Any, file: Path) -> float:
        """The quick export check: either file holds one tensor, the learnt vectors, and nothing else."""
        from safetensors.torch import load_file

        tensors = list(load_file(str(file)).values())
        if len(tensors) != 1 or tensors[0].shape != self.learned_embeds(pipe).shape:
            return float("inf")
        return float((tensors[0].float() - self.learned_embeds(pipe).float()).abs().max())

    def load_export(self, pipe: Any, file: Path) -> None:
        """How a user loads either export in diffusers (the loader accepts both, given the token)."""
        pipe.load_textual_inversion(str(file), token=self.config.placeholder_token)
