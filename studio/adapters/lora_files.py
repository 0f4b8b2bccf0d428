"""Writing a trained LoRA in diffusers' format (`pytorch_lora_weights.safetensors`, what `load_lora_weights`
reads) and LoHa / LoKr in peft's own; the kohya file is kohya.py's.

The diffusers file keeps the text encoder under `text_encoder.text_model.…` as diffusers itself writes it (diffusers
0.32 cannot find the layers otherwise) and bakes the scale alpha / rank into lora_B, so a reader that ignores the
adapter metadata (older diffusers) still applies the right scale; the metadata then says alpha = rank.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from studio.adapters.kohya import adapter_parts
from studio.models.saving import with_text_model
from studio.runs.layout import LORA_FILE


def baked_lora_layers(module: torch.nn.Module, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The LoRA of pipeline part `name` (unet, text_encoder, text_encoder_2) as `save_lora_weights` takes it: peft's
    key names (a text encoder's from `text_model.`), each layer's scale multiplied into lora_B, and adapter
    metadata that says alpha = rank (scale 1) to go with it."""
    from peft.tuners.lora import LoraLayer
    from peft.utils import get_peft_model_state_dict

    state = get_peft_model_state_dict(module)
    for path, layer in module.named_modules():
        if isinstance(layer, LoraLayer) and f"{path}.lora_B.weight" in state:
            state[f"{path}.lora_B.weight"] = state[f"{path}.lora_B.weight"] * layer.scaling["default"]
    state = with_text_model({f"{name}.{key}": value for key, value in state.items()})
    config = module.peft_config["default"].to_dict()
    config.update(lora_alpha=config["r"], alpha_pattern=dict(config.get("rank_pattern") or {}), use_rslora=False)
    return {key[len(name) + 1 :]: value.contiguous() for key, value in state.items()}, config


def save_lora_diffusers(pipe: Any, folder: Path) -> Path:
    arguments: dict[str, Any] = {}
    for name, module in adapter_parts(pipe).items():
        # peft's own key names (`…to_q.lora_A.weight`), which load_lora_weights reads as they are. diffusers'
        # convert_state_dict_to_diffusers renames only attention keys to the old `lora.down` style and leaves
        # convolutions as `lora_A`: a file mixing both reloads without the attention LoRA (measured 2026-11-23).
        arguments[f"{name}_lora_layers"], arguments[f"{name}_lora_adapter_metadata"] = baked_lora_layers(module, name)
    folder.mkdir(parents=True, exist_ok=True)
    # the pipeline's own class: SDXL's save_lora_weights also takes the second text encoder
    type(pipe).save_lora_weights(folder, safe_serialization=True, **arguments)
    return folder / LORA_FILE


# ------------------------------------------------------------------ pipeline folders


def save_peft_adapter(pipe: Any, folder: Path) -> Path:
    """LoHa / LoKr: peft's own adapter format (diffusers' load_lora_weights does not read these)."""
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = pipe.unet.peft_config["default"].to_dict()
    state = {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(pipe.unet).items()}
    save_file(state, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2, default=list), encoding="utf-8")
    return folder / "adapter_model.safetensors"
