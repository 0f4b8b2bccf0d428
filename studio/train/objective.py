"""What the UNet learns at each step, shared by every method: the noise added, the target, the loss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def sample_noise(latents: torch.Tensor, offset_noise: float, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    if offset_noise:
        # offset noise: a per-channel constant lets the model learn to shift overall brightness
        # (plain noise has zero mean per image, so very dark or bright images are hard to learn)
        offset = torch.randn((latents.shape[0], latents.shape[1], 1, 1), generator=generator)
        noise = noise + offset_noise * offset.to(latents)
    return noise


def training_target(scheduler: Any, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor):
    """What the UNet must predict: the noise (epsilon) or the velocity (v-prediction, SD 2.x 768)."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"prediction_type {kind!r} is not supported for training")


def diffusion_loss(
    prediction: torch.Tensor, target: torch.Tensor, timesteps: torch.Tensor, scheduler: Any, min_snr_gamma: float
) -> torch.Tensor:
    """MSE, optionally Min-SNR weighted (Hang et al. 2023): easy low-noise timesteps stop dominating the loss."""
    if not min_snr_gamma:
        return F.mse_loss(prediction.float(), target.float(), reduction="mean")
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps)
    weights = torch.clamp(snr, max=min_snr_gamma)
    # divide by what the target already implies: snr for epsilon, snr + 1 for velocity
    weights = weights / (snr + 1 if scheduler.config.prediction_type == "v_prediction" else snr)
    per_sample = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=[1, 2, 3])
    return (per_sample * weights).mean()
