"""The pocket model's card: how it was made and what it scores."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from studio.pocket import components, world


def write_model_card(out_dir: Path, cfg, metrics: dict) -> None:
    out_dir = Path(out_dir)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / "pretrain_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    vae = metrics.get("vae_reconstruction", {})
    vae_line = (
        f"VAE reused from {cfg.vae_from} (trained by this recipe earlier);"
        if cfg.vae_from
        else f"VAE {cfg.vae_steps} steps at batch {cfg.vae_batch} (L1 + MSE, KL weight {cfg.vae_kl_weight});"
    )
    phrasing = "".join(f"| {name} | {value} |\n" for name, value in metrics.get("phrasing", {}).items())
    text = f"""---
library_name: diffusers
pipeline_tag: text-to-image
tags: [stable-diffusion, tiny, cpu, shapes-world]
---

# Pocket model

A tiny text-to-image model in standard diffusers format
(`StableDiffusionPipeline.from_pretrained("assets/pocket")`), trained by
this project's own recipe (`studio pocket pretrain`) on a procedural
"shapes world": one flat shape on a flat background, 64x64 pixels.

## What it knows
- Shapes: {", ".join(world.BASE_SHAPES)}
- Colours: {", ".join(world.BASE_COLORS)}
- Backgrounds: {", ".join(world.BASE_BACKGROUNDS)}
- Prompts written the way people write them: "a yellow triangle on a black
  background", "yellow triangle, black background", "on a grey backdrop, a
  big yellow triangle"; a made-up word (a name, a trigger word: "a yellow sks
  triangle ...") leaves the rest of the prompt intact, and one in the noun's
  place ("a yellow zq on a black background") draws one of its shapes, ready
  for a fine-tune to bend into a new one

It has never been shown {", ".join(world.NEW_SHAPES)} or the colours
{", ".join(world.NEW_COLORS)} in a prompt: those are left for fine-tuning to teach.
Its VAE did see every shape and some random clutter, since fine-tuning keeps
the VAE frozen and it has to be able to draw what users teach.

## Parts
| part | class | size |
| --- | --- | --- |
| tokenizer | `CLIPTokenizer`, byte-level BPE, {cfg.vocab_size} entries, 77 tokens | |
| text encoder | `CLIPTextModel`, {components.TEXT_LAYERS} layers, width {components.TEXT_WIDTH} | |
| VAE | `AutoencoderKL`, 64x64x3 <-> 16x16x4 | |
| UNet | `UNet2DConditionModel`, channels 48/96/128, cross-attention at every level (16x16, 8x8, 4x4) | |
| scheduler | `DPMSolverMultistepScheduler` (SD 1.5 betas, epsilon prediction) | |

## How it was trained
{vae_line}
{cfg.latent_images} cached latents; UNet and text encoder {cfg.unet_steps} steps at batch {cfg.unet_batch},
each image captioned anew at every step in one of many phrasings (`studio/pocket/phrasing.py`),
AdamW lr {cfg.unet_lr} with cosine decay, min-SNR gamma {cfg.snr_gamma}, caption dropout {cfg.caption_dropout},
EMA weights shipped. Seed {cfg.seed}; {cfg.threads} CPU threads. {metrics.get("wall_time", "")}
The full settings are in `pretrain_config.json`.

## What it scores
Judged by the shapes-world evaluator (`studio.pocket.evaluator`) over all
{len(world.base_combinations())} base combinations x {cfg.eval_seeds} seeds = {metrics["images"]} images,
{metrics["steps"]} steps of {metrics["sampler"]}, guidance {metrics["guidance"]}:

| measure | value |
| --- | --- |
| joint accuracy (shape, colour and background all right) | {metrics["joint_accuracy"]:.1%} |
| shape | {metrics["shape_accuracy"]:.1%} |
| colour | {metrics["color_accuracy"]:.1%} |
| background | {metrics["background_accuracy"]:.1%} |
| VAE reconstructions, joint accuracy | {vae.get("joint", 0):.1%} |
| VAE reconstructions, PSNR | {vae.get("psnr", 0)} dB |

Phrasing (`bench/lora_pocket.py --phrasing --no-train`): base prompts written
another way, one sample each for 8 base combinations, right = shape, colour and
background all right:

| phrasing | right |
| --- | --- |
{phrasing}
The figures are in `metrics.json`; `tests/pocket/test_pocket_model.py` re-measures a sample.
"""
    (out_dir / "README.md").write_text(text)
