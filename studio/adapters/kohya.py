"""LoRA weights under the key names other tools read: one conversion for every kohya file we write.

Our LoRAs live in peft's names (`unet.<module>.lora_A.weight`, `text_encoder.<module>.lora_B.weight`); a run
export, a checkpoint preview and a saved playground mix all become kohya / AUTOMATIC1111 / ComfyUI files here:

- kohya sd-scripts names a single text encoder `lora_te_…` (SD 1.x / 2.x) and SDXL's two `lora_te1_…` / `lora_te2_…`
  (`LoRANetwork.create_modules`); diffusers' `convert_state_dict_to_kohya` always writes `lora_te1_`, and with one
  encoder sd-scripts then builds no text-encoder module at all. ComfyUI, A1111 and diffusers read either.
- diffusers' conversion also writes `.alpha = rank` for every layer; a LoRA trained with alpha != rank needs its
  true alpha there (or a mix whose scale is already in lora_up keeps alpha = rank).
- text-encoder layers are named from `text_model.` as in transformers 4, which every one of these tools runs;
  transformers 5 dropped CLIPTextModel's `text_model` wrapper, so its names are `encoder.layers…`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from studio.models.saving import TEXT_ENCODERS, save_safetensors, with_text_model

# sd-scripts adapts only layers inside a Transformer2DModel, ResnetBlock2D, Downsample2D or Upsample2D (UNet) and a
# CLIPAttention or CLIPMLP (text encoder); in diffusers' names those are the layers these patterns match.
_SD_SCRIPTS_UNET = re.compile(
    r"lora_unet_(down_blocks_\d+_(attentions|resnets|downsamplers)|mid_block_(attentions|resnets)"
    r"|up_blocks_\d+_(attentions|resnets|upsamplers))_\d+_"
)
_SD_SCRIPTS_TEXT = re.compile(r"lora_te[12]?_text_model_encoder_layers_\d+_(self_attn|mlp)_")

# sd-scripts' `ss_base_model_version` (model_util.get_model_version_str_for_sd1_sd2, sdxl_model_util)
_BASE_MODEL_VERSIONS = {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0"}


def kohya_state_dict(
    state: Mapping[str, torch.Tensor], alphas: Mapping[str, float] | None, sdxl: bool
) -> dict[str, torch.Tensor]:
    """peft-named LoRA weights (`<part>.<module>.lora_A.weight`) as one kohya state dict.

    `alphas`: each part's (unet, text_encoder, text_encoder_2) alpha; None when the scale is already in lora_up
    (alpha = rank). `sdxl`: whether the base has two text encoders, which decides `lora_te_` or `lora_te1_`.
    """
    from diffusers.utils import convert_state_dict_to_kohya

    kohya = {}
    for key, value in convert_state_dict_to_kohya(with_text_model(state)).items():
        if not sdxl and key.startswith("lora_te1_"):
            key = "lora_te_" + key[len("lora_te1_") :]
        if key.endswith(".alpha") and alphas is not None:
            value = torch.tensor(float(alphas[_part(key)]))
        kohya[key] = value.detach().contiguous()
    return kohya


def _part(kohya_key: str) -> str:
    prefix = kohya_key.split("_text_model_")[0] if kohya_key.startswith("lora_te") else "lora_unet"
    return {"lora_te": "text_encoder", "lora_te1": "text_encoder", "lora_te2": "text_encoder_2"}.get(prefix, "unet")


def kohya_metadata(kohya: Mapping[str, torch.Tensor], family: str, v_prediction: bool = False) -> dict[str, str]:
    """The `ss_*` fields sd-scripts writes for a LoRA: network module, dim, alpha, base model, conv arguments."""
    linear, conv = Counter(), Counter()
    for key, down in kohya.items():
        if key.endswith(".lora_down.weight"):
            alpha = float(kohya[key.replace(".lora_down.weight", ".alpha")])
            is_3x3 = down.dim() == 4 and tuple(down.shape[2:]) != (1, 1)
            (conv if is_3x3 else linear)[(down.shape[0], alpha)] += 1
    metadata = {"ss_network_module": "networks.lora", "ss_v2": str(family == "sd2")}
    if linear or conv:
        dim, alpha = (linear or conv).most_common(1)[0][0]
        metadata.update(ss_network_dim=str(dim), ss_network_alpha=str(alpha))
    if conv:  # sd-scripts trains 3x3 convolutions only when given conv_dim (and conv_alpha)
        dim, alpha = conv.most_common(1)[0][0]
        metadata["ss_network_args"] = json.dumps({"conv_dim": str(dim), "conv_alpha": str(alpha)})
    version = _BASE_MODEL_VERSIONS[family]
    metadata["ss_base_model_version"] = version + ("_v" if v_prediction and family != "sdxl" else "")
    return metadata


def sd_scripts_ignored(keys: list[str]) -> list[str]:
    """The LoRA layers (kohya names) that sd-scripts silently leaves unused: conv_in, conv_out, time embedding…"""
    layers = dict.fromkeys(key.split(".")[0] for key in keys)
    return [name for name in layers if not (_SD_SCRIPTS_UNET.match(name) or _SD_SCRIPTS_TEXT.match(name))]


# ------------------------------------------------------------------ the three things that become kohya files


def pipeline_kohya_state_dict(pipe: Any) -> dict[str, torch.Tensor]:
    """A trained pipeline's LoRA (a run's export): each part's peft weights at that part's alpha."""
    from peft.utils import get_peft_model_state_dict

    state, alphas = {}, {}
    for name, module in adapter_parts(pipe).items():
        state.update({f"{name}.{key}": value for key, value in get_peft_model_state_dict(module).items()})
        alphas[name] = float(module.peft_config["default"].lora_alpha)
    return kohya_state_dict(state, alphas, sdxl=getattr(pipe, "text_encoder_2", None) is not None)


def checkpoint_kohya(checkpoint: Path) -> dict[str, torch.Tensor]:
    """A run checkpoint (peft names, `.default` adapter) as a kohya state dict carrying the run's true alpha.

    The alpha is read from the run's resolved config: a LoRA names it `alpha`, a method that trains a LoRA on
    request (DreamBooth's `use_lora`) `lora_alpha`; a run of any other kind has no LoRA to preview."""
    from safetensors.torch import load_file

    from studio.runs.folder import read_config
    from studio.runs.layout import TRAINABLE

    config = read_config(checkpoint.parent.parent)
    method = str(config.get("method"))
    options = config.get(method) if isinstance(config.get(method), dict) else {}
    if options.get("use_lora") and "lora_alpha" in options:
        alpha = options["lora_alpha"]
    elif options.get("variant", "lora") == "lora" and "alpha" in options:
        alpha = options["alpha"]
    else:
        raise ValueError(f"checkpoint {checkpoint.name}: only plain LoRA runs can be previewed, not {method}")
    state = {key.replace(".default.", "."): value for key, value in load_file(str(checkpoint / TRAINABLE)).items()}
    # only the naming of the text encoders depends on it; our SDXL runs train both or neither
    sdxl = any(key.startswith("text_encoder_2.") for key in state)
    return kohya_state_dict(state, dict.fromkeys(("unet", *TEXT_ENCODERS), float(alpha)), sdxl)


def kohya_file_metadata(pipe: Any, kohya: dict[str, torch.Tensor]) -> dict[str, str]:
    """sd-scripts' `ss_*` fields for a kohya state dict made on `pipe`'s base model."""
    from studio.models.single_file import pipeline_family

    v_prediction = pipe.scheduler.config.get("prediction_type") == "v_prediction"
    return kohya_metadata(kohya, str(pipeline_family(pipe)), v_prediction)


def save_lora_kohya(pipe: Any, path: Path) -> Path:
    state = pipeline_kohya_state_dict(pipe)
    return save_safetensors(state, path, kohya_file_metadata(pipe, state))


def kohya_consumer_warnings(path: Path) -> list[str]:
    """What a reader of this kohya file should know: the layers kohya sd-scripts silently leaves out."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as stream:
        ignored = sd_scripts_ignored(list(stream.keys()))
    if not ignored:
        return []
    return [
        f"{path.name}: kohya sd-scripts skips {', '.join(ignored)} (outside every block it adapts), so there it "
        "acts as a weaker LoRA; ComfyUI, A1111 / Forge and diffusers apply every layer"
    ]


def adapter_parts(pipe: Any) -> dict[str, torch.nn.Module]:
    """The parts of `pipe` that carry an adapter: the UNet, and the text encoder(s) when they were trained too."""
    parts = {"unet": pipe.unet}
    for name in TEXT_ENCODERS:
        if getattr(getattr(pipe, name, None), "peft_config", None):
            parts[name] = getattr(pipe, name)
    return parts
