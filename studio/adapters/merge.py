"""Several LoRAs as one: into the base weights for good (training on top of them), or into one LoRA file.

The file merge is exact, not an average: for each layer the updates add up, sum_i s_i * B_i @ A_i, which is one
LoRA of rank sum(r_i) with down = [A_1; A_2; ...] and up = [s_1 B_1, s_2 B_2, ...] (s_i = the adapter's weight times
its alpha / rank, per-block weights included: exactly what diffusers set on the layer). Written in kohya format with
alpha = rank (scale 1), which diffusers, AUTOMATIC1111, ComfyUI and sd-scripts all read (kohya.py).
"""

from __future__ import annotations

from typing import Any

import torch

from studio.adapters.kohya import kohya_state_dict
from studio.adapters.stack import COMPONENTS, AdapterStack, LoraSpec


def merge_into_base(pipe: Any, paths: list[str]) -> None:
    """Merge LoRAs (each `PATH` or `PATH:WEIGHT`) into the pipeline's base weights for good, for training on top
    of them: they are fused, then their adapter layers are removed, so the pipeline is a plain model again whose
    weights include them and a new adapter is the only one."""
    AdapterStack().apply_loras(pipe, [LoraSpec.parse(text) for text in paths], fuse=True)
    pipe.unload_lora_weights()  # drops the adapter layers; the fused weights stay in the base layers


def mix_state_dict(pipe: Any, adapter_names: list[str]) -> dict[str, torch.Tensor]:
    """The active mix of `adapter_names`, at the weights set on the pipeline now, as one kohya state dict."""
    from peft.tuners.lora import LoraLayer

    if not adapter_names:
        raise ValueError("no LoRA is switched on: nothing to save")
    peft_style = {}
    for part in COMPONENTS:
        model = getattr(pipe, part, None)
        if model is None:
            continue
        for module_name, module in model.named_modules():
            if not isinstance(module, LoraLayer):
                continue
            downs, ups = [], []
            for name in adapter_names:
                if name not in module.lora_A:
                    continue
                if module.use_dora.get(name):
                    raise ValueError("a DoRA adapter cannot be merged into a plain LoRA")
                downs.append(module.lora_A[name].weight.detach().float())
                ups.append(module.lora_B[name].weight.detach().float() * module.scaling[name])
            if downs:
                peft_style[f"{part}.{module_name}.lora_A.weight"] = torch.cat(downs, dim=0)
                peft_style[f"{part}.{module_name}.lora_B.weight"] = torch.cat(ups, dim=1)
    # alphas None: alpha = rank for every layer, a scale of 1, which is what the sums above need
    return kohya_state_dict(peft_style, None, sdxl=getattr(pipe, "text_encoder_2", None) is not None)
