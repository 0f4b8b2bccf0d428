"""What the UNet is conditioned on (text embeddings; SDXL's pooled text and size micro-conditioning), the cache of
frozen encoders' outputs, and the UNet call that takes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class Caches:
    """Latents (as the VAE's mean and std, sampled each step) and text embeddings, when those parts are frozen.

    Latents are keyed by (image, mirrored): with random_flip both versions of each image are encoded once, since a
    mirrored image's latent is not exactly the mirrored latent (the VAE is not perfectly symmetric)."""

    latents: dict[tuple[Path, bool], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    text: dict[str, Conditioning] = field(default_factory=dict)


@dataclass
class Conditioning:
    """What the UNet is conditioned on: the text encoder's hidden states; SDXL adds the second encoder's pooled
    embedding (its `added_cond_kwargs`). Rows are captions."""

    hidden: torch.Tensor
    pooled: torch.Tensor | None = None

    @staticmethod
    def stack(rows: list[Conditioning]) -> Conditioning:
        pooled = torch.stack([r.pooled for r in rows]) if rows[0].pooled is not None else None
        return Conditioning(torch.stack([r.hidden for r in rows]), pooled)

    def row(self, index: int) -> Conditioning:
        return Conditioning(self.hidden[index], None if self.pooled is None else self.pooled[index])


def is_sdxl(pipe: Any) -> bool:
    return getattr(pipe, "text_encoder_2", None) is not None


def encode_prompts(pipe: Any, captions: list[str], device) -> Conditioning:
    if is_sdxl(pipe):
        # both encoders' penultimate layers side by side + the second one's pooled output, as SDXL was trained
        hidden, _, pooled, _ = pipe.encode_prompt(captions, device=device, do_classifier_free_guidance=False)
        return Conditioning(hidden, pooled)
    tokens = pipe.tokenizer(
        captions, padding="max_length", max_length=pipe.tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids.to(device)
    return Conditioning(pipe.text_encoder(tokens)[0])


def text_embeddings(pipe: Any, captions: list[str], caches: Caches, trains_text: bool, device) -> Conditioning:
    if trains_text:  # the text encoder learns: encode every step, with gradients
        return encode_prompts(pipe, captions, device)
    with torch.no_grad():
        for caption in captions:
            if caption not in caches.text:  # one caption at a time, for the same reason as fill_caches
                caches.text[caption] = encode_prompts(pipe, [caption], device).row(0)
    return Conditioning.stack([caches.text[c] for c in captions])


def predict(pipe: Any, noisy: torch.Tensor, timesteps: torch.Tensor, condition: Conditioning) -> torch.Tensor:
    """The UNet's prediction for a noisy batch. SDXL also takes the pooled text and the size/crop "micro-
    conditioning" (original size, crop corner, target size); training images are whole and square, so the
    crop corner is (0, 0) and both sizes are the training resolution."""
    hidden = condition.hidden.to(noisy.dtype)
    if condition.pooled is None:
        return pipe.unet(noisy, timesteps, hidden).sample
    side = noisy.shape[-1] * pipe.vae_scale_factor
    time_ids = torch.tensor([[side, side, 0, 0, side, side]], dtype=noisy.dtype, device=noisy.device)
    added = {"text_embeds": condition.pooled.to(noisy.dtype), "time_ids": time_ids.repeat(noisy.shape[0], 1)}
    return pipe.unet(noisy, timesteps, hidden, added_cond_kwargs=added).sample
