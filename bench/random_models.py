"""SD 1.5-sized and SDXL-sized pipelines with random weights, built from configs (no download), for timing and
memory: the compute and memory of a step depend on the shapes, not on the values.

The sizes follow the published configs (runwayml SD 1.5: UNet 860M, CLIP ViT-L/14 text encoder, 83M VAE;
SDXL base: UNet 2.6B with 1/2/10 transformer layers, CLIP ViT-L + OpenCLIP bigG). The tokenizer is the pocket
model's (a prompt's token count, not its vocabulary, is what costs); the text encoders keep CLIP's 49,408-row
embedding. `tiny-*` variants of each are toy-sized, so the benchmark's whole path can be smoke-run on a CPU.
"""

from __future__ import annotations

from pathlib import Path

from studio.paths import POCKET_MODEL_DIR

VOCAB = 49_408
SIZES = ("sd15", "sdxl", "tiny-sd15", "tiny-sdxl")


def _text_encoder(hidden: int, layers: int, heads: int, intermediate: int, projection: int | None = None):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=77,
        projection_dim=projection or hidden,
        hidden_act="quick_gelu" if projection is None else "gelu",
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def _vae(tiny: bool, sample_size: int, scaling: float):
    from diffusers import AutoencoderKL

    channels = (8, 16, 16, 16) if tiny else (128, 256, 512, 512)
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=channels,
        layers_per_block=1 if tiny else 2,
        latent_channels=4,
        norm_num_groups=8 if tiny else 32,
        sample_size=sample_size,
        scaling_factor=scaling,
    )


def _scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False, steps_offset=1
    )


def build_sd15(tokenizer, tiny: bool):
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    width = 32 if tiny else 768
    unet = UNet2DConditionModel(
        sample_size=8 if tiny else 64,
        block_out_channels=(16, 32, 32, 32) if tiny else (320, 640, 1280, 1280),
        layers_per_block=1 if tiny else 2,
        norm_num_groups=8 if tiny else 32,
        attention_head_dim=8,
        cross_attention_dim=width,
    )
    encoder = _text_encoder(width, 2, 4, 64) if tiny else _text_encoder(768, 12, 12, 3072)
    return StableDiffusionPipeline(
        vae=_vae(tiny, 64 if tiny else 512, 0.18215),
        text_encoder=encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_sdxl(tokenizer, tiny: bool):
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

    one, two = (16, 16) if tiny else (768, 1280)
    time_dim = 8 if tiny else 256
    unet = UNet2DConditionModel(
        sample_size=8 if tiny else 128,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32, 32) if tiny else (320, 640, 1280),
        layers_per_block=1 if tiny else 2,
        norm_num_groups=8 if tiny else 32,
        transformer_layers_per_block=(1, 1, 1) if tiny else (1, 2, 10),
        attention_head_dim=(2, 4, 4) if tiny else (5, 10, 20),
        cross_attention_dim=one + two,  # both encoders' hidden states side by side
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=6 * time_dim + two,  # six size/crop numbers + pooled text
    )
    if tiny:
        first, second = _text_encoder(one, 2, 4, 32), _text_encoder(two, 2, 4, 32, projection=two)
    else:
        first, second = _text_encoder(768, 12, 12, 3072), _text_encoder(1280, 32, 20, 5120, projection=1280)
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading"
    )
    return StableDiffusionXLPipeline(
        vae=_vae(tiny, 64 if tiny else 1024, 0.13025),
        text_encoder=first,
        text_encoder_2=second,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )


def write_random_model(size: str, folder: Path) -> Path:
    """A diffusers folder of the given size with random weights (seeded), as safetensors; reused if present."""
    import torch
    from transformers import CLIPTokenizer

    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    if (folder / "model_index.json").is_file():
        return folder
    torch.manual_seed(0)
    tokenizer = CLIPTokenizer.from_pretrained(str(POCKET_MODEL_DIR / "tokenizer"))
    build = build_sdxl if size.endswith("sdxl") else build_sd15
    build(tokenizer, tiny=size.startswith("tiny")).save_pretrained(str(folder), safe_serialization=True)
    return folder


def few_step_overrides(model: Path, resolution: int, steps: int) -> dict[str, str]:
    """The settings every real-size bench case shares: this model, size and step count, one image a batch, and no
    checkpoint or sample in between (bench/gpu_memory.py, bench/real_size.py)."""
    return {
        "base_model": str(model),
        "resolution": str(resolution),
        "steps": str(steps),
        "batch_size": "1",
        "checkpoint_every": "0",
        "sample_every": "0",
    }
