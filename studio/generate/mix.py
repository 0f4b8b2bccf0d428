"""One LoRA file from several: merge LoRAs with weights, or save the playground's current adapter mix.

The merge is exact, not an average: for each layer the updates add up, sum_i s_i * B_i @ A_i, which is one LoRA of
rank sum(r_i) with down = [A_1; A_2; ...] and up = [s_1 B_1, s_2 B_2, ...] (s_i = the adapter's weight times its
alpha / rank, per-block weights included: exactly what diffusers set on the layer). Written in kohya format with
alpha = rank (scale 1), which diffusers, AUTOMATIC1111, ComfyUI and sd-scripts all read (`lora_keys`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from studio.generate.adapters import COMPONENTS, LoraSpec


def mix_state_dict(pipe: Any, adapter_names: list[str]) -> dict[str, torch.Tensor]:
    """The active mix of `adapter_names`, at the weights set on the pipeline now, as one kohya state dict."""
    from peft.tuners.lora import LoraLayer

    from studio.train.lora_keys import kohya_state_dict

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


def describe_mix(loras: list[LoraSpec]) -> str:
    """The switched-on LoRAs by the names a person knows them by: 'stars · LoRA · trigger zq 0.8, bold -0.5'."""
    from studio.generate.library import adapter_label

    return ", ".join(f"{adapter_label(spec.path)} {spec.weight:g}" for spec in loras if spec.enabled)


def save_mix(engine: Any, model: str, loras: list[LoraSpec], path: str | Path) -> Path:
    """Merge the enabled `loras` at their weights (on base `model`) into one .safetensors LoRA at `path`."""
    from studio.train.export import kohya_file_metadata, save_safetensors

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"a merged LoRA is saved as .safetensors, not {path.name}")
    with engine.lock:
        pipe = engine.load(model).pipe
        names = engine.adapters(pipe).apply_loras(pipe, loras, fuse=False)
        state = mix_state_dict(pipe, names)
        metadata = kohya_file_metadata(pipe, state)
    sources = [spec.to_dict() for spec in loras if spec.enabled]
    metadata["studio_mix"] = json.dumps({"model": model, "loras": sources, "description": describe_mix(loras)})
    return save_safetensors(state, path, metadata)
