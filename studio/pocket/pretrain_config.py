"""The pocket model's pretraining recipe settings: torch-free, so the CLI can list them without loading torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PretrainConfig:
    out_dir: str = "assets/pocket"
    work_dir: str = "data/pocket-pretrain"
    seed: int = 0
    threads: int = 2
    vocab_size: int = 8192
    # a trained VAE (diffusers folder) to reuse instead of training one; empty: train it
    vae_from: str = ""
    # a trained pocket model (diffusers folder) whose UNet and text encoder start this one where they match
    init_from: str = ""
    vae_steps: int = 1400
    vae_batch: int = 16
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-6
    vae_clutter_share: float = 0.2
    latent_images: int = 30_000
    unet_steps: int = 3200
    unet_batch: int = 32
    unet_lr: float = 6e-4
    caption_dropout: float = 0.1
    snr_gamma: float = 5.0
    ema_decay: float = 0.9995
    checkpoint_every: int = 250
    probe_every: int = 250
    eval_seeds: int = 4
    eval_steps: int = 25
    guidance: float = 6.0
