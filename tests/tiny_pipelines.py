"""Tiny SD1, SD2-like and SDXL pipelines, built from configs with real diffusers/transformers classes.

Toy sizes: each pipeline runs a 2-step 32x32 image in well under a second on one CPU thread. Only the
SD2 text encoder is not toy-sized: SD2 is recognised by its 1024-wide cross-attention, so one 1024-wide
text layer (~5M parameters) is unavoidable.
"""

from __future__ import annotations

import torch

IMAGE_SIZE = 32  # pixels; the tiny VAEs downsample 2x


def _text_encoder(tokenizer, hidden: int, layers: int = 2, projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden if hidden < 256 else 64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=hidden,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=IMAGE_SIZE,
    )


def _unet(cross_attention_dim: int, **extra):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        attention_head_dim=8,
        cross_attention_dim=cross_attention_dim,
        **extra,
    )


def _scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False, steps_offset=1
    )


def build_sd(tokenizer, text_width: int, text_layers: int = 2, **unet_extra):
    from diffusers import StableDiffusionPipeline

    torch.manual_seed(0)  # same weights every session
    return StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=_text_encoder(tokenizer, text_width, text_layers),
        tokenizer=tokenizer,
        unet=_unet(text_width, **unet_extra),
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_sdxl(tokenizer):
    """After diffusers' own SDXL pipeline tests (get_dummy_components), with our tokenizer."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    torch.manual_seed(0)
    width, time_dim = 16, 8
    unet = _unet(
        2 * width,  # both text encoders' hidden states, concatenated
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        # 6 size/crop numbers, each embedded to time_dim, plus the pooled text embedding of encoder 2
        projection_class_embeddings_input_dim=6 * time_dim + width,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading"
    )
    return StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=_text_encoder(tokenizer, width),
        text_encoder_2=_text_encoder(tokenizer, width, projection=True),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )


def generate(pipe, seed: int = 0, steps: int = 2):
    """A deterministic 2-step image as a float numpy array (H, W, 3)."""
    from studio.train.export import render

    return render(pipe, "a red circle", IMAGE_SIZE, seed=seed, steps=steps)
