"""Training images to latents: the VAE's distribution of each image (optionally mirrored), encoded once when the
VAE is frozen (the cache holds mean and std; a fresh latent is sampled each step)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from studio.train.conditioning import Caches
from studio.train.data import TrainingImage


@torch.no_grad()
def encode_latent_distribution(pipe: Any, images: list[TrainingImage], device, dtype, flips: list[bool] | None = None):
    pixels = np.stack([i.pixels() for i in images])  # (batch, channels, height, width)
    for index, flip in enumerate(flips or []):
        if flip:
            pixels[index] = pixels[index, :, :, ::-1]
    dist = pipe.vae.encode(torch.from_numpy(pixels).to(device, dtype)).latent_dist
    return dist.mean, dist.std


def fill_caches(pipe: Any, items: list[TrainingImage], caches: Caches, device, dtype, mirrored: bool = False) -> None:
    """Encode every image once, one at a time: the same numbers whatever batch an image later lands in. With
    `mirrored`, the left-right mirrored version too (random_flip)."""
    for item in items:
        for flip in (False, True) if mirrored else (False,):
            if (item.path, flip) not in caches.latents:
                mean, std = encode_latent_distribution(pipe, [item], device, dtype, [flip])
                caches.latents[(item.path, flip)] = (mean[0], std[0])


def draw_flips(count: int, enabled: bool, generator: torch.Generator) -> list[bool]:
    """Which images of a batch are mirrored (random_flip); no draw at all when off, so other runs are unchanged."""
    if not enabled:
        return [False] * count
    return (torch.rand(count, generator=generator) < 0.5).tolist()


def latent_distribution(
    pipe: Any, images: list[TrainingImage], caches: Caches | None, device, dtype, flips: list[bool] | None = None
):
    """(mean, std) of each image's latent (mirrored where `flips` says), from the cache when there is one."""
    flips = flips or [False] * len(images)
    if caches is None:
        return encode_latent_distribution(pipe, images, device, dtype, flips)
    means, stds = zip(*(caches.latents[(i.path, flip)] for i, flip in zip(images, flips)))
    return torch.stack(means), torch.stack(stds)
