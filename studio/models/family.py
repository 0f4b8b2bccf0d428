"""Which Stable Diffusion family a model belongs to, from its files alone.

The family decides the pipeline class, the default resolution and, later, the
training recipe. It is read from configs (diffusers folders) or from weight
names and shapes (single-file checkpoints), never by loading the weights.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import torch

from studio.models.errors import ModelLoadError


class Family(str, Enum):
    """Model families the studio can load and fine-tune."""

    SD1 = "sd1"  # SD 1.x and anything shaped like it, the pocket model included
    SD2 = "sd2"  # SD 2.x: OpenCLIP-H text encoder, 1024-wide cross-attention
    SDXL = "sdxl"  # SDXL base: two text encoders, size/crop conditioning ("text_time")

    def __str__(self) -> str:
        return self.value


# diffusers' names (see `infer_diffusers_model_type`) for the checkpoints we support.
_DIFFUSERS_TYPES: dict[str, Family] = {"v1": Family.SD1, "v2": Family.SD2, "xl_base": Family.SDXL}

# Hub repos whose configs describe a standard model of each family (what diffusers itself uses).
DEFAULT_CONFIG_REPOS: dict[Family, str] = {
    Family.SD1: "stable-diffusion-v1-5/stable-diffusion-v1-5",
    Family.SD2: "stabilityai/stable-diffusion-2-1",
    Family.SDXL: "stabilityai/stable-diffusion-xl-base-1.0",
}

_SUPPORTED = "SD 1.x, SD 2.x and SDXL text-to-image base models"
_UNET_PREFIX = "model.diffusion_model."


def pipeline_class(family: Family | str) -> type:
    """The diffusers text-to-image pipeline class for a family."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return StableDiffusionXLPipeline if Family(family) is Family.SDXL else StableDiffusionPipeline


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(
            f"Could not read '{path}' ({err}); the model folder looks damaged, re-download it."
        ) from err


def family_from_configs(model_index: Mapping[str, Any], unet_config: Mapping[str, Any]) -> Family:
    """Classify from a pipeline's `model_index.json` and its `unet/config.json` contents."""
    class_name = str(model_index.get("_class_name", ""))
    if not class_name.startswith("StableDiffusion"):
        raise ModelLoadError(
            f"This model is a {class_name or 'unknown pipeline'}, but the studio supports {_SUPPORTED}."
        )
    if unet_config.get("in_channels", 4) != 4:
        # 9 channels: inpainting, 8: instruct-pix2pix, 5: depth; their UNets need extra image inputs.
        raise ModelLoadError(
            f"This {class_name} has a UNet with {unet_config.get('in_channels')} input channels (an inpainting or "
            f"image-conditioned variant); use one of the {_SUPPORTED} instead."
        )
    if unet_config.get("addition_embed_type") == "text_time":
        if not model_index.get("text_encoder") or model_index.get("text_encoder") == [None, None]:
            raise ModelLoadError(
                f"This looks like the SDXL refiner (no first text encoder); use one of the {_SUPPORTED}."
            )
        return Family.SDXL
    cross_dim = unet_config.get("cross_attention_dim", 768)
    if isinstance(cross_dim, list | tuple):
        cross_dim = cross_dim[0]
    # SD2's OpenCLIP-H text encoder is 1024 wide, SD1's CLIP-L 768; smaller SD1-shaped models
    # (like the pocket model at 128) train and sample exactly like SD1.
    return Family.SD2 if cross_dim == 1024 else Family.SD1


def family_from_folder(folder: str | Path) -> Family:
    """Classify a diffusers pipeline folder (one written by `save_pretrained`)."""
    folder = Path(folder)
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise ModelLoadError(
            f"Folder '{folder}' has no model_index.json, so it is not a diffusers pipeline; pass a folder written by "
            "`save_pretrained`, a .safetensors checkpoint, or a hub id like 'owner/name'."
        )
    unet_path = folder / "unet" / "config.json"
    if not unet_path.is_file():
        raise ModelLoadError(
            f"Folder '{folder}' has no unet/config.json; pass a complete text-to-image pipeline folder ({_SUPPORTED})."
        )
    return family_from_configs(_read_json(index_path), _read_json(unet_path))


def family_from_state_dict(state_dict: Mapping[str, Any]) -> Family:
    """Classify an original-layout (LDM / A1111 / ComfyUI) checkpoint from its key names and tensor shapes.

    Only `.shape` of the values is used, so a mapping of meta tensors is enough.
    """
    keys = list(state_dict)
    if not any(k.startswith(_UNET_PREFIX) for k in keys):
        if any(k.startswith(("lora_unet_", "lora_te")) or ".lora_" in k or "lora_down" in k for k in keys):
            hint = "it looks like a LoRA, which is applied on top of a base model"
        else:
            hint = "it has no model.diffusion_model.* weights, so it is not a complete checkpoint"
        raise ModelLoadError(f"This file is not a full Stable Diffusion checkpoint ({hint}); pass a base model.")

    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    try:
        model_type = infer_diffusers_model_type(state_dict)
    except Exception:  # a branch for an exotic model read tensor values we do not have; not one of ours
        model_type = "unknown"
    # diffusers recognises SDXL by a key of its 10th text layer and SD2 by a block that tiny or unusual
    # UNets lack, and answers "v1" for anything it cannot place; so look at the structure ourselves too.
    has_label_emb = f"{_UNET_PREFIX}label_emb.0.0.weight" in state_dict
    if model_type in ("v1", "v2") and has_label_emb and any(k.startswith("conditioner.embedders.1.") for k in keys):
        model_type = "xl_base"
    if model_type in ("v1", "v2"):
        to_k = next((k for k in keys if k.startswith(_UNET_PREFIX) and k.endswith("attn2.to_k.weight")), None)
        if to_k is None:
            raise ModelLoadError(
                f"This checkpoint's UNet has no cross-attention, so it is not one of the {_SUPPORTED}."
            )
        model_type = "v2" if state_dict[to_k].shape[-1] == 1024 else "v1"
    if model_type not in _DIFFUSERS_TYPES:
        raise ModelLoadError(
            f"This checkpoint was recognised as '{model_type}', which the studio cannot use; it supports {_SUPPORTED}."
        )
    return _DIFFUSERS_TYPES[model_type]


class _ShapeOnly(Mapping):
    """A read-only view of a .safetensors file: key -> meta tensor with the right shape, no data read."""

    def __init__(self, path: Path) -> None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            self._shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}

    def __getitem__(self, key: str) -> torch.Tensor:
        return torch.empty(self._shapes[key], device="meta")

    def __iter__(self):
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)


def load_pickle_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a .ckpt/.pt/.bin checkpoint; only call this after the user opted in to pickle files."""
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) torch files cannot be memory-mapped
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    while isinstance(sd, dict) and "state_dict" in sd:  # Lightning-style wrapping, as diffusers does
        sd = sd["state_dict"]
    return sd


def family_from_single_file(path: str | Path, allow_pickle: bool = False) -> Family:
    """Classify a single-file checkpoint; pickle formats only with `allow_pickle=True`."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        try:
            return family_from_state_dict(_ShapeOnly(path))
        except ModelLoadError:
            raise
        except Exception as err:  # safetensors raises its own error types for truncated/invalid files
            raise ModelLoadError(f"Could not read '{path.name}' as safetensors ({err}); re-download the file.") from err
    if not allow_pickle:
        raise ModelLoadError(
            f"'{path.name}' is a pickle-based checkpoint, which can run code when opened, so it is refused by default; "
            "convert it to .safetensors, or pass allow_pickle=True (--allow-pickle) if you trust where it came from."
        )
    try:
        state_dict = load_pickle_state_dict(path)
    except Exception as err:  # torch refuses pickles holding anything but tensors and plain containers
        raise ModelLoadError(
            f"Could not read '{path.name}' as a weights-only torch checkpoint ({str(err).splitlines()[0][:200]}); "
            "convert it to .safetensors with the tool that made it."
        ) from err
    return family_from_state_dict(state_dict)


def detect_family(path: str | Path, allow_pickle: bool = False) -> Family:
    """Classify a local diffusers folder or single-file checkpoint."""
    path = Path(path)
    if path.is_dir():
        return family_from_folder(path)
    return family_from_single_file(path, allow_pickle=allow_pickle)
