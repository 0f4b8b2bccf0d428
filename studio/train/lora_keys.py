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

import torch

TEXT_ENCODERS = ("text_encoder", "text_encoder_2")

# sd-scripts adapts only layers inside a Transformer2DModel, ResnetBlock2D, Downsample2D or Upsample2D (UNet) and a
# CLIPAttention or CLIPMLP (text encoder); in diffusers' names those are the layers these patterns match.
_SD_SCRIPTS_UNET = re.compile(
    r"lora_unet_(down_blocks_\d+_(attentions|resnets|downsamplers)|mid_block_(attentions|resnets)"
    r"|up_blocks_\d+_(attentions|resnets|upsamplers))_\d+_"
)
_SD_SCRIPTS_TEXT = re.compile(r"lora_te[12]?_text_model_encoder_layers_\d+_(self_attn|mlp)_")

# sd-scripts' `ss_base_model_version` (model_util.get_model_version_str_for_sd1_sd2, sdxl_model_util)
_BASE_MODEL_VERSIONS = {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0"}


def with_text_model(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`text_encoder.encoder.layers…` (transformers 5) as `text_encoder.text_model.encoder.layers…` (4 and the tools)."""
    renamed = {}
    for key, value in state.items():
        part, _, rest = key.partition(".")
        if part in TEXT_ENCODERS and not rest.startswith(("text_model.", "text_projection.")):
            key = f"{part}.text_model.{rest}"
        renamed[key] = value
    return renamed


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
