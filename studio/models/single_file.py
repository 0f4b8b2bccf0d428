"""Export a diffusers SD1/SD2 pipeline as one original-layout `.safetensors` checkpoint.

This is the inverse of diffusers' single-file loader (`diffusers.loaders.single_file_utils`:
`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`, `convert_ldm_clip_checkpoint`,
`convert_open_clip_checkpoint`) and follows diffusers'
`scripts/convert_diffusers_to_original_stable_diffusion.py`, so the file opens in A1111, ComfyUI
and `from_single_file`. Unlike that script, the block layout is read from the models themselves
rather than assumed to be SD 1.5's (4 levels, 2 layers each), so smaller models convert too.

Layout written:
- `model.diffusion_model.*`     UNet (LDM names: input_blocks / middle_block / output_blocks)
- `first_stage_model.*`         VAE (LDM names: encoder.down.N.block.M, mid.attn_1 as 1x1 convs, ...)
- `cond_stage_model.transformer.text_model.*`  SD1: the Hugging Face CLIP text model, names unchanged
- `cond_stage_model.model.*`    SD2: OpenCLIP names, with q/k/v fused into `in_proj_weight`
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from studio.models.family import Family, family_from_configs

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel

__all__ = ["ldm_state_dict", "pipeline_family", "save_single_file"]

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."  # SD1 (OpenAI CLIP-L, kept in Hugging Face naming)
OPEN_CLIP_PREFIX = "cond_stage_model.model."  # SD2 (OpenCLIP-H, in open_clip naming)
LDM_SCALING_FACTOR = 0.18215  # what A1111/ComfyUI assume for SD1/SD2 latents

# Sub-module renames inside a block, diffusers -> LDM.
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}

# (diffusers prefix, LDM prefix, renames applied to what follows the prefix)
Prefix = tuple[str, str, dict[str, str]]


def _rename(rest: str, renames: dict[str, str]) -> str:
    """Rename the leading sub-module of `rest` ("norm1.weight" -> "in_layers.0.weight")."""
    for old, new in renames.items():
        if rest.startswith(old + "."):
            return new + rest[len(old) :]
    return rest


def _convert(state: dict[str, torch.Tensor], prefixes: Iterable[Prefix], what: str) -> dict[str, torch.Tensor]:
    """Map every key through the first matching prefix; any key left over means an unsupported architecture."""
    prefixes = list(prefixes)
    out: dict[str, torch.Tensor] = {}
    unmapped = []
    for key, tensor in state.items():
        for diffusers_prefix, ldm_prefix, renames in prefixes:
            if key.startswith(diffusers_prefix):
                out[ldm_prefix + _rename(key[len(diffusers_prefix) :], renames)] = tensor
                break
        else:
            unmapped.append(key)
    if unmapped:
        # Silently dropping weights would export a broken model, so refuse instead.
        raise ValueError(
            f"Cannot export this {what} to the original layout; it has weights with no LDM name: {unmapped[:5]}"
        )
    return out


def _unet_prefixes(unet: UNet2DConditionModel) -> list[Prefix]:
    """The LDM UNet numbers its blocks in one sequence per side: input_blocks.0 is conv_in, then for each
    level one entry per resnet (+ its attention as sub-module 1) and one for the downsampler; output_blocks
    likewise, with the upsampler as the last sub-module of the level's last entry."""
    mid = unet.mid_block
    if type(mid).__name__ != "UNetMidBlock2DCrossAttn" or len(mid.resnets) != 2 or len(mid.attentions) != 1:
        raise ValueError("Cannot export this UNet: the original layout needs a resnet-attention-resnet middle block.")
    prefixes: list[Prefix] = [
        ("time_embedding.linear_1.", "time_embed.0.", {}),
        ("time_embedding.linear_2.", "time_embed.2.", {}),
        ("conv_in.", "input_blocks.0.0.", {}),
        ("conv_norm_out.", "out.0.", {}),
        ("conv_out.", "out.2.", {}),
        ("mid_block.resnets.0.", "middle_block.0.", _UNET_RESNET),
        ("mid_block.attentions.0.", "middle_block.1.", {}),  # transformer internals share diffusers' names
        ("mid_block.resnets.1.", "middle_block.2.", _UNET_RESNET),
    ]
    n = 1
    for i, block in enumerate(unet.down_blocks):
        has_attention = getattr(block, "attentions", None) is not None
        for j in range(len(block.resnets)):
            prefixes.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{n}.0.", _UNET_RESNET))
            if has_attention:
                prefixes.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{n}.1.", {}))
            n += 1
        if block.downsamplers is not None:
            prefixes.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{n}.0.op.", {}))
            n += 1
    n = 0
    for i, block in enumerate(unet.up_blocks):
        has_attention = getattr(block, "attentions", None) is not None
        for j in range(len(block.resnets)):
            prefixes.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{n}.0.", _UNET_RESNET))
            if has_attention:
                prefixes.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{n}.1.", {}))
            n += 1
        if block.upsamplers is not None:
            slot = 2 if has_attention else 1
            prefixes.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{n - 1}.{slot}.", {}))
    return prefixes


def _vae_prefixes(vae: AutoencoderKL) -> list[Prefix]:
    """LDM's VAE names levels down.N / up.N by resolution, so the decoder's order is reversed."""
    prefixes: list[Prefix] = [("quant_conv.", "quant_conv.", {}), ("post_quant_conv.", "post_quant_conv.", {})]
    for side in ("encoder", "decoder"):
        coder = getattr(vae, side)
        prefixes += [
            (f"{side}.conv_in.", f"{side}.conv_in.", {}),
            (f"{side}.conv_out.", f"{side}.conv_out.", {}),
            (f"{side}.conv_norm_out.", f"{side}.norm_out.", {}),
            (f"{side}.mid_block.attentions.0.", f"{side}.mid.attn_1.", _VAE_ATTENTION),
        ]
        prefixes += [
            (f"{side}.mid_block.resnets.{j}.", f"{side}.mid.block_{j + 1}.", _VAE_RESNET)
            for j in range(len(coder.mid_block.resnets))
        ]
    for i, block in enumerate(vae.encoder.down_blocks):
        prefixes += [
            (f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}.", _VAE_RESNET)
            for j in range(len(block.resnets))
        ]
        prefixes.append((f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.", {}))
    levels = len(vae.decoder.up_blocks)
    for i, block in enumerate(vae.decoder.up_blocks):
        level = levels - 1 - i
        prefixes += [
            (f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{level}.block.{j}.", _VAE_RESNET)
            for j in range(len(block.resnets))
        ]
        prefixes.append((f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{level}.upsample.", {}))
    return prefixes


def _vae_state(vae: AutoencoderKL) -> dict[str, torch.Tensor]:
    state = _convert(vae.state_dict(), _vae_prefixes(vae), "VAE")
    for key, tensor in state.items():
        # The original VAE's mid-block attention uses 1x1 convolutions where diffusers uses linear layers.
        if ".mid.attn_1." in key and key.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")):
            if tensor.ndim == 2:
                state[key] = tensor.reshape(*tensor.shape, 1, 1)
    return state


def _clip_state(text_encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    """SD1: the Hugging Face CLIPTextModel's own names under `text_model.`.

    transformers >= 5.6 dropped the `text_model.` level from CLIPTextModel; the file format keeps it.
    """
    return {
        CLIP_PREFIX + (key if key.startswith("text_model.") else "text_model." + key): tensor
        for key, tensor in text_encoder.state_dict().items()
        if not key.endswith("position_ids")  # a constant buffer; diffusers' loader does not expect it
    }


_OPEN_CLIP_LAYER = [
    ("self_attn.out_proj.", "attn.out_proj."),
    ("layer_norm1.", "ln_1."),
    ("layer_norm2.", "ln_2."),
    ("mlp.fc1.", "mlp.c_fc."),
    ("mlp.fc2.", "mlp.c_proj."),
]
_QKV = re.compile(r"encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)")


def _open_clip_state(text_encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    """SD2: OpenCLIP names; OpenCLIP's attention is one `nn.MultiheadAttention` with q, k, v stacked."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    unmapped = []
    for key, tensor in text_encoder.state_dict().items():
        key = key.removeprefix("text_model.")
        if key.endswith("position_ids"):
            continue
        if key == "embeddings.token_embedding.weight":
            out["token_embedding.weight"] = tensor
        elif key == "embeddings.position_embedding.weight":
            out["positional_embedding"] = tensor
        elif key.startswith("final_layer_norm."):
            out["ln_final." + key.removeprefix("final_layer_norm.")] = tensor
        elif match := _QKV.fullmatch(key):
            layer, which, kind = match.groups()
            qkv.setdefault((layer, kind), {})[which] = tensor
        elif key.startswith("encoder.layers."):
            layer, rest = key.removeprefix("encoder.layers.").split(".", 1)
            for old, new in _OPEN_CLIP_LAYER:
                if rest.startswith(old):
                    out[f"transformer.resblocks.{layer}.{new}{rest[len(old) :]}"] = tensor
                    break
            else:
                unmapped.append(key)
        else:
            unmapped.append(key)
    if unmapped:
        raise ValueError(f"Cannot export this text encoder to the OpenCLIP layout; unexpected weights: {unmapped[:5]}")
    for (layer, kind), parts in qkv.items():
        out[f"transformer.resblocks.{layer}.attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return {OPEN_CLIP_PREFIX + key: tensor for key, tensor in out.items()}


def pipeline_family(pipe: DiffusionPipeline) -> Family:
    """The family of an in-memory pipeline, by the same rules as for a folder."""
    index = {"_class_name": type(pipe).__name__, "text_encoder": getattr(pipe, "text_encoder", None) is not None}
    return family_from_configs(index, dict(pipe.unet.config))


def ldm_state_dict(pipe: DiffusionPipeline, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The pipeline's UNet, VAE and text encoder weights under original (LDM) names, on the CPU."""
    family = pipeline_family(pipe)
    if family is Family.SDXL:
        raise ValueError("Single-file export supports SD1 and SD2 pipelines; SDXL export is not implemented yet.")
    unet_state = _convert(pipe.unet.state_dict(), _unet_prefixes(pipe.unet), "UNet")
    text_state = _open_clip_state(pipe.text_encoder) if family is Family.SD2 else _clip_state(pipe.text_encoder)
    state = {UNET_PREFIX + k: v for k, v in unet_state.items()}
    state.update({VAE_PREFIX + k: v for k, v in _vae_state(pipe.vae).items()})
    state.update(text_state)

    def prepare(tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.detach().to("cpu")
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        return tensor.contiguous()

    return {key: prepare(tensor) for key, tensor in state.items()}


def save_single_file(pipe: DiffusionPipeline, path: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write an SD1/SD2 pipeline as one `.safetensors` checkpoint in the original layout; returns the path.

    `dtype` (e.g. torch.float16) halves the file for sharing; None keeps the weights' own precision.
    The file holds weights only: scheduler, tokenizer and VAE scaling factor come from the family's
    standard configs when it is opened (or from `config=` in diffusers).
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise ValueError(f"'{path.name}' must end in .safetensors; the studio never writes pickle checkpoints.")
    scaling = float(getattr(pipe.vae.config, "scaling_factor", LDM_SCALING_FACTOR))
    if abs(scaling - LDM_SCALING_FACTOR) > 1e-6:
        warnings.warn(
            f"This VAE's latent scaling factor is {scaling:g}, but A1111/ComfyUI assume {LDM_SCALING_FACTOR} for "
            "SD1/SD2 files; load the export with a config folder (diffusers `config=`) to keep images right.",
            stacklevel=2,
        )
    state = ldm_state_dict(pipe, dtype=dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    # Written under a temporary name and renamed, so an interrupted export never leaves a truncated model.
    save_file(state, str(tmp), metadata={"format": "pt", "studio.family": pipeline_family(pipe).value})
    tmp.replace(path)
    return path
