"""Configs of the pocket model's parts: real diffusers/transformers classes, tiny sizes.

64x64 RGB images; a VAE that downsamples 4x to 16x16x4 latents; a UNet with
cross-attention at every level, the full 16x16 latent resolution included, as
in SD 1.x (the first pocket model had none at 16x16: an outline could then
only be taught through convolutions, which act whatever the prompt says, so
taught concepts ignored the prompt's background and colour); a 4-layer CLIP
text encoder, pretrained on captions varied the way people write
(`phrasing.py`). The noise schedule is Stable Diffusion 1.5's, so everything
downstream treats the pocket model like SD 1.5.
"""

from __future__ import annotations

IMAGE_SIZE = 64
LATENT_SIZE = 16
TEXT_WIDTH = 128
TEXT_LAYERS = 4


def make_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=IMAGE_SIZE,
    )


def make_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * 3,
        up_block_types=("CrossAttnUpBlock2D",) * 3,
        block_out_channels=(48, 96, 128),
        layers_per_block=1,
        norm_num_groups=16,
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=8,
    )


def make_text_encoder(vocab_size: int, bos_token_id: int, eos_token_id: int, pad_token_id: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=TEXT_WIDTH,
        intermediate_size=4 * TEXT_WIDTH,
        num_hidden_layers=TEXT_LAYERS,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )
    return CLIPTextModel(config)


def make_train_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type="epsilon",
        clip_sample=False,
        steps_offset=1,
    )


def make_sampling_scheduler():
    """DPM-Solver++ 2M: good images in 20-25 steps, the pipeline's default."""
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler.from_config(make_train_scheduler().config)
