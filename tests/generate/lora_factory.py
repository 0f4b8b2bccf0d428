"""LoRA files for the playground tests: random (but fixed) adapters on a tiny pipeline, written by our exporters."""

from __future__ import annotations

from pathlib import Path

import torch

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def write_lora(
    base_dir: Path,
    out: Path,
    seed: int,
    rank: int = 4,
    alpha: float = 2.0,
    text_encoder: bool = False,
    convolutions: bool = False,
    outer: bool = False,
):
    """A LoRA whose update is large enough to see, saved in diffusers and kohya format (same weights).

    With `convolutions`, the resnets' convolutions are adapted too, as the pocket preset does; with `outer`, the
    UNet's first and last convolutions (conv_in, conv_out) as well, outside every down/mid/up block.

    Returns (diffusers file, kohya file).
    """
    import peft

    from studio.adapters.kohya import save_lora_kohya
    from studio.adapters.lora_files import save_lora_diffusers
    from studio.models import load_pipeline

    pipe = load_pipeline(str(base_dir), device="cpu", dtype=torch.float32).pipe
    torch.manual_seed(seed)
    targets = UNET_TARGETS + (["conv1", "conv2"] if convolutions else []) + (["conv_in", "conv_out"] if outer else [])
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, init_lora_weights=False)
    pipe.unet.add_adapter(config)
    if text_encoder:
        te_config = peft.LoraConfig(
            r=rank, lora_alpha=alpha, target_modules=["q_proj", "k_proj", "v_proj", "out_proj"], init_lora_weights=False
        )
        pipe.text_encoder.add_adapter(te_config)
    with torch.no_grad():
        for module in (pipe.unet, pipe.text_encoder):
            for name, param in module.named_parameters():
                if "lora_B" in name:
                    param.mul_(4.0)  # peft's random B is small; make the change plain in a 2-step image
    diffusers_file = save_lora_diffusers(pipe, out / "diffusers")
    kohya_file = save_lora_kohya(pipe, out / "kohya.safetensors")
    return diffusers_file, kohya_file
