"""How big a base model is, from its configs alone: parameters per part, and what one UNet step costs at a
resolution (floating-point operations, and the bytes autograd keeps for the backward pass).

Nothing is loaded and nothing is computed on real numbers: each part is built on PyTorch's meta device (shapes
only, no memory) from its config, and one forward pass is traced there under `FlopCounterMode` and a
saved-tensors hook. So an estimate for SDXL takes a second, not the minutes and 10 GB a real load does. A hub
model that is not in the local cache is described by its family's published configs (SD 1.5, SD 2.1, SDXL).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.models.family import Family, family_from_folder, family_from_single_file
from studio.models.loader import resolve_source

# The published configs' shapes (runwayml SD 1.5, stabilityai SD 2.1 and SDXL base 1.0); bench/random_models.py
# builds random-weight models from the same numbers.
SD15_UNET: dict[str, Any] = {
    "sample_size": 64,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "attention_head_dim": 8,
    "cross_attention_dim": 768,
}
SD21_UNET: dict[str, Any] = SD15_UNET | {
    "sample_size": 96,
    "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024,
    "use_linear_projection": True,
}
SDXL_UNET: dict[str, Any] = {
    "sample_size": 128,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [320, 640, 1280],
    "layers_per_block": 2,
    "transformer_layers_per_block": [1, 2, 10],
    "attention_head_dim": [5, 10, 20],
    "cross_attention_dim": 2048,
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
}
CLIP_L = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12}
OPENCLIP_H = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23, "num_attention_heads": 16}
OPENCLIP_BIGG = {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32, "num_attention_heads": 20}
SD_VAE = {
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
}
PUBLISHED = {
    Family.SD1: (SD15_UNET, [CLIP_L], SD_VAE),
    Family.SD2: (SD21_UNET, [OPENCLIP_H], SD_VAE),
    Family.SDXL: (SDXL_UNET, [CLIP_L, OPENCLIP_BIGG], SD_VAE),
}
TEXT_TOKENS = 77


@dataclass(frozen=True)
class ModelConfigs:
    """The configs that size a model, as JSON text (hashable, so profiles are cached per model)."""

    family: Family
    unet: str
    text_encoders: tuple[str, ...]
    vae: str
    published: bool  # the family's published configs stand in for a model whose own were not found

    @property
    def unet_config(self) -> dict[str, Any]:
        return json.loads(self.unet)


@dataclass(frozen=True)
class Parameters:
    unet: int
    text_encoders: int
    vae: int

    @property
    def total(self) -> int:
        return self.unet + self.text_encoders + self.vae


def _dumps(config: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in config.items() if not k.startswith("_")}, sort_keys=True)


def _published(family: Family) -> ModelConfigs:
    unet, encoders, vae = PUBLISHED[family]
    return ModelConfigs(family, _dumps(unet), tuple(_dumps(e) for e in encoders), _dumps(vae), published=True)


def _from_folder(folder: Path) -> ModelConfigs:
    def read(part: str) -> dict[str, Any]:
        return json.loads((folder / part / "config.json").read_text(encoding="utf-8"))

    encoders = tuple(
        _dumps(read(name)) for name in ("text_encoder", "text_encoder_2") if (folder / name / "config.json").is_file()
    )
    return ModelConfigs(family_from_folder(folder), _dumps(read("unet")), encoders, _dumps(read("vae")), False)


def _guess_family(name: str) -> Family:
    lowered = name.lower()
    if "xl" in lowered:
        return Family.SDXL
    if "stable-diffusion-2" in lowered or "sd2" in lowered:
        return Family.SD2
    return Family.SD1


def model_configs(base_model: str) -> ModelConfigs:
    """The configs of `base_model` (pocket, a folder, a single file or a hub id) without loading a weight and
    without a network request: a hub model outside the cache gets its family's published configs."""
    source = resolve_source(base_model)
    if source.kind in ("pocket", "folder"):
        return _from_folder(Path(source.location))
    if source.kind == "single_file":
        return _published(family_from_single_file(source.location))
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(source.location, "model_index.json")
    if isinstance(cached, str):
        folder = Path(cached).parent
        if all((folder / part / "config.json").is_file() for part in ("unet", "vae", "text_encoder")):
            return _from_folder(folder)
    return _published(_guess_family(source.location))


def _meta_unet(configs: ModelConfigs):
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        return UNet2DConditionModel.from_config(configs.unet_config)


@functools.lru_cache(maxsize=16)
def parameters(configs: ModelConfigs) -> Parameters:
    import torch
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    with torch.device("meta"):
        vae = AutoencoderKL.from_config(json.loads(configs.vae))
        text = 0
        for encoder in configs.text_encoders:
            settings = {k: v for k, v in json.loads(encoder).items() if k in CLIPTextConfig().to_dict()}
            text += count(CLIPTextModel(CLIPTextConfig(**settings)))
    return Parameters(count(_meta_unet(configs)), text, count(vae))


@functools.lru_cache(maxsize=32)
def adapter_parameters(configs: ModelConfigs, targets: tuple[str, ...], rank: int) -> int:
    """Parameters of LoRA adapters of `rank` on the UNet modules named `targets` (peft's matching: the whole name
    or its last parts): rank x (inputs + outputs) per linear layer, rank x (inputs x kernel + outputs) per conv."""
    import torch

    total = 0
    for name, module in _meta_unet(configs).named_modules():
        if not any(name == target or name.endswith(f".{target}") for target in targets):
            continue
        if isinstance(module, torch.nn.Linear):
            total += rank * (module.in_features + module.out_features)
        elif isinstance(module, torch.nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += rank * (module.in_channels * kernel + module.out_channels)
    return total


@dataclass(frozen=True)
class StepProfile:
    """One UNet forward pass at a resolution and batch, counted on the meta device."""

    forward_gflops: float
    saved_gb: float  # bytes (in float32) autograd keeps for the backward pass, in GB
    # with gradient checkpointing the backward pass recomputes one resnet or transformer at a time: the largest
    # one's activations sit beside the saved ones for a moment (0 without checkpointing)
    recompute_gb: float = 0.0
    # the attention probabilities (tokens x tokens per head) among the saved: the math kernel keeps them, a fused
    # kernel (flash / memory-efficient, as on a GPU) does not
    attention_gb: float = 0.0


@functools.lru_cache(maxsize=64)
def unet_step(
    configs: ModelConfigs, resolution: int, batch: int, trained: tuple[str, ...] | None, checkpointing: bool
) -> StepProfile:
    """`trained`: the module names whose weights take gradients (None: every weight; empty: none, and the
    gradient flows to the text conditioning, as in Textual Inversion)."""
    flops, saved, units, attention = _trace(configs, resolution, batch, trained, checkpointing=False)
    if not checkpointing:
        return StepProfile(flops, saved, 0.0, attention)
    _, kept, _, _ = _trace(configs, resolution, batch, trained, checkpointing=True)
    largest = max(units, key=units.get, default=None)
    return StepProfile(flops, kept, units[largest][0] if largest else 0.0, units[largest][1] if largest else 0.0)


def _trace(
    configs: ModelConfigs, resolution: int, batch: int, trained: tuple[str, ...] | None, checkpointing: bool
) -> tuple[float, float, dict[str, tuple[float, float]], float]:
    """One meta pass: forward GFLOPs, GB saved for backward, (GB saved, of it attention) inside each resnet or
    transformer, and GB of attention probabilities saved."""
    import torch
    from diffusers.models.resnet import ResnetBlock2D
    from diffusers.models.transformers.transformer_2d import Transformer2DModel
    from torch.utils.flop_counter import FlopCounterMode

    unet = _meta_unet(configs)
    config = unet.config
    for name, parameter in unet.named_parameters():
        module = name.rsplit(".", 1)[0]
        parameter.requires_grad_(trained is None or any(module.endswith(t) for t in trained))
    if checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    side = resolution // 8
    with torch.device("meta"):
        sample = torch.empty(batch, config.in_channels, side, side)
        text = torch.empty(batch, TEXT_TOKENS, config.cross_attention_dim, requires_grad=trained == ())
        extra = {}
        if config.addition_embed_type == "text_time":
            pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
            extra = {
                "added_cond_kwargs": {"text_embeds": torch.empty(batch, pooled), "time_ids": torch.empty(batch, 6)}
            }
        timesteps = torch.zeros(batch, dtype=torch.long)
    weights = {id(p) for p in unet.parameters()}
    seen: set[int] = set()
    saved = attention = 0.0
    units: dict[str, tuple[float, float]] = {}
    inside: list[str] = []

    def leave(*_) -> None:  # a forward hook that returned something would replace the module's output
        inside.pop()

    for name, module in unet.named_modules():  # the units gradient checkpointing recomputes one at a time
        if isinstance(module, ResnetBlock2D | Transformer2DModel):
            module.register_forward_pre_hook(lambda _m, _a, name=name: inside.append(name))
            module.register_forward_hook(leave)

    def pack(tensor):
        nonlocal saved, attention
        if id(tensor) not in weights and id(tensor) not in seen:  # weights are in memory anyway
            seen.add(id(tensor))
            size = tensor.numel() * 4 / 1e9
            # tokens x tokens: wider than any feature map's side, so it is attention, not a convolution's input
            probabilities = size if tensor.dim() >= 3 and tensor.shape[-1] == tensor.shape[-2] > side else 0.0
            saved, attention = saved + size, attention + probabilities
            if inside:
                unit = units.get(inside[0], (0.0, 0.0))
                units[inside[0]] = (unit[0] + size, unit[1] + probabilities)
        return tensor

    with FlopCounterMode(display=False) as counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        unet(sample, timesteps, text, **extra)
    return counter.get_total_flops() / 1e9, saved, units, attention


@functools.lru_cache(maxsize=32)
def vae_gflops(configs: ModelConfigs, resolution: int) -> tuple[float, float]:
    """(encode, decode) GFLOPs of one image at `resolution`."""
    import torch
    from diffusers import AutoencoderKL
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        vae = AutoencoderKL.from_config(json.loads(configs.vae))
        image = torch.empty(1, 3, resolution, resolution)
        latent = torch.empty(1, vae.config.latent_channels, resolution // 8, resolution // 8)
    with torch.no_grad(), FlopCounterMode(display=False) as encode:
        vae.encode(image)
    with torch.no_grad(), FlopCounterMode(display=False) as decode:
        vae.decode(latent)
    return encode.get_total_flops() / 1e9, decode.get_total_flops() / 1e9


def text_encoder_gflops(configs: ModelConfigs) -> float:
    """One prompt through every text encoder: two operations per weight and token (the embeddings aside)."""
    return 2 * parameters(configs).text_encoders * TEXT_TOKENS / 1e9
