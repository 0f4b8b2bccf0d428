"""How tools no one here wrote read our exports, restated from their own code (read 2026-12, not copied).

- kohya sd-scripts `networks/lora.py` (`LoRANetwork.create_modules`, `create_network_from_weights`): a LoRA module
  exists only for a Linear / Conv2d *inside* a module of class Transformer2DModel, ResnetBlock2D, Downsample2D or
  Upsample2D (UNet) or CLIPAttention / CLIPMLP (text encoder). Its name is `prefix.<path>.<child>` with every `.`
  made `_`; prefix `lora_unet`, and for text encoders `lora_te` when the model has one, `lora_te1` / `lora_te2`
  when it has two (SDXL). The text encoder's path starts at `text_model.` (transformers 4, which sd-scripts pins).
  Weights are loaded with `strict=False`: a key whose module was not created is silently unused. sd-scripts'
  SDXL UNet has original (SGM) names, but `convert_diffusers_to_sai_if_needed` renames diffusers-named keys first,
  so diffusers names stand for it here.
- ComfyUI `comfy/lora.py` (`model_lora_keys_unet`, `model_lora_keys_clip`, `load_lora`): kohya keys
  `lora_unet_<diffusers weight name with _>`; text layers `lora_te_` / `lora_te1_` for the first CLIP (either),
  `lora_te2_` for SDXL's second, only for q/k/v/out_proj and mlp fc1/fc2 of `text_model.encoder.layers.N`;
  diffusers keys only as `unet.<path>` with `.to_q` written `.processor.to_q` (and `to_out.0` as `to_out`), or
  `text_encoder.text_model.encoder.layers.N.<module>`. Weights: `.lora_up/.lora_down`, `_lora.up/down`,
  `.lora_B/.lora_A`, `.lora.up/down`, `.lora_linear_layer.up/down`; scale `alpha / rank` when `.alpha` is present,
  else 1.0. Every other key is logged "lora key not loaded".
- the A1111 Lora extension on a diffusers backend (SD.Next, `extensions-builtin/Lora/networks.py`,
  `assign_network_names_to_compvis_modules`): a layer is found only under `lora_unet_<unet module path with _>`,
  `lora_te_<text encoder module path>` (SD 1.x / 2.x) or `lora_te1_` / `lora_te2_` (SDXL); anything else is
  counted "unmatched". A1111 itself maps `lora_te_text_model_encoder_layers_N_…` for SD 1.x / 2.x.
- diffusers 0.32 (`load_lora_into_text_encoder`): reads the text-encoder rank of each layer from
  `text_model.encoder.layers.N.self_attn.{q,k,v,out}_proj.lora_B.weight` / `mlp.fc{1,2}.lora_B.weight`; with
  text-encoder keys but none of these, `get_peft_kwargs` takes the first of an empty dict (IndexError). It does
  not read the adapter metadata that newer diffusers store, so a file is applied at scale 1 (alpha = rank) unless
  kohya `.alpha` keys say otherwise.
"""

from __future__ import annotations

import re
from typing import Any

SD_SCRIPTS_UNET_CLASSES = ("Transformer2DModel", "ResnetBlock2D", "Downsample2D", "Upsample2D")
SD_SCRIPTS_TEXT_CLASSES = ("CLIPAttention", "CLIPMLP")
COMFY_CLIP_MODULES = (
    "mlp.fc1",
    "mlp.fc2",
    "self_attn.k_proj",
    "self_attn.q_proj",
    "self_attn.v_proj",
    "self_attn.out_proj",
)
COMFY_WEIGHT_FORMS = (
    (".lora_up.weight", ".lora_down.weight"),
    ("_lora.up.weight", "_lora.down.weight"),
    (".lora_B.weight", ".lora_A.weight"),
    (".lora.up.weight", ".lora.down.weight"),
    (".lora_linear_layer.up.weight", ".lora_linear_layer.down.weight"),
)


def _text_encoders(pipe: Any) -> list:
    return [e for e in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if e is not None]


def _transformers4_path(encoder: Any, path: str) -> str:
    """transformers 5 dropped CLIPTextModel's `text_model` wrapper; version 4 (what the tools run) has it."""
    return path if hasattr(encoder, "text_model") else f"text_model.{path}".rstrip(".")


def _is_adapter_part(name: str) -> bool:
    """peft keeps the original layer as `<name>.base_layer` beside `lora_A` / `lora_B`: not the model's own."""
    return any(part == "base_layer" or part.startswith("lora_") for part in name.split("."))


def _modules_inside(root: Any, classes: tuple[str, ...]) -> list[tuple[str, Any]]:
    found = []
    for name, module in root.named_modules():
        if type(module).__name__ in classes:
            for child_name, child in module.named_modules():
                # peft's wrappers are classes named Linear / Conv2d too, under the original name
                if type(child).__name__ in ("Linear", "Conv2d") and child_name and not _is_adapter_part(child_name):
                    found.append((f"{name}.{child_name}", child))
    return found


def sd_scripts_module_names(pipe: Any) -> set[str]:
    """Every LoRA module name sd-scripts creates for this model (the keys it can use, before `.lora_down` etc.)."""
    names = {"lora_unet_" + path.replace(".", "_") for path, _ in _modules_inside(pipe.unet, SD_SCRIPTS_UNET_CLASSES)}
    encoders = _text_encoders(pipe)
    for index, encoder in enumerate(encoders, start=1):
        prefix = "lora_te" if len(encoders) == 1 else f"lora_te{index}"
        for path, _ in _modules_inside(encoder, SD_SCRIPTS_TEXT_CLASSES):
            names.add(f"{prefix}_{_transformers4_path(encoder, path)}".replace(".", "_"))
    return names


def sd_scripts_unused_keys(pipe: Any, state: dict) -> list[str]:
    """The file's keys sd-scripts leaves unused (module not created), in file order."""
    created = sd_scripts_module_names(pipe)
    return [key for key in state if key.split(".")[0] not in created]


def a1111_diffusers_unmatched_keys(pipe: Any, state: dict) -> list[str]:
    """The file's keys the A1111 Lora extension on a diffusers backend cannot place (SD.Next's layer mapping)."""
    names = {"lora_unet_" + n.replace(".", "_") for n, _ in pipe.unet.named_modules() if not _is_adapter_part(n)}
    encoders = _text_encoders(pipe)
    for index, encoder in enumerate(encoders, start=1):
        prefix = "lora_te_" if len(encoders) == 1 else f"lora_te{index}_"
        for path, _ in encoder.named_modules():
            if path and not _is_adapter_part(path):
                names.add(prefix + _transformers4_path(encoder, path).replace(".", "_"))
    return [key for key in state if key.split(".")[0] not in names]


def comfy_key_map(pipe: Any) -> dict[str, str]:
    """ComfyUI's LoRA key -> model weight map for this model (model weights named the diffusers way here)."""
    key_map = {}
    for key in pipe.unet.state_dict():
        key = key.replace(".base_layer.", ".")
        if key.endswith(".weight") and not _is_adapter_part(key):
            path = key[: -len(".weight")]
            key_map["lora_unet_" + path.replace(".", "_")] = f"unet.{key}"
            diffusers_form = path.replace(".to_", ".processor.to_")
            if diffusers_form.endswith(".to_out.0"):
                diffusers_form = diffusers_form[:-2]
            key_map[diffusers_form] = key_map[f"unet.{diffusers_form}"] = f"unet.{key}"
    encoders = _text_encoders(pipe)
    for index, encoder in enumerate(encoders):
        layers = encoder.config.num_hidden_layers
        part = "text_encoder" if index == 0 else "text_encoder_2"
        prefixes = ("lora_te_", "lora_te1_") if index == 0 else ("lora_te2_",)
        for layer in range(layers):
            for module in COMFY_CLIP_MODULES:
                target = f"{part}.text_model.encoder.layers.{layer}.{module}.weight"
                for prefix in prefixes:
                    key_map[f"{prefix}text_model_encoder_layers_{layer}_{module.replace('.', '_')}"] = target
                key_map[f"{part}.text_model.encoder.layers.{layer}.{module}"] = target
    return key_map


def comfy_load(pipe: Any, state: dict) -> tuple[dict[str, float], list[str]]:
    """What ComfyUI applies: model weight -> scale (alpha / rank, or 1.0), and the keys it logs as not loaded."""
    patches, loaded = {}, set()
    for lora_key, target in comfy_key_map(pipe).items():
        for up, down in COMFY_WEIGHT_FORMS:
            if lora_key + up in state:
                rank = state[lora_key + down].shape[0]
                alpha = state.get(f"{lora_key}.alpha")
                patches[target] = float(alpha) / rank if alpha is not None else 1.0
                loaded.update(
                    {lora_key + up, lora_key + down} | ({f"{lora_key}.alpha"} if alpha is not None else set())
                )
                break
    return patches, [key for key in state if key not in loaded]


_TEXT_RANK_KEY = re.compile(
    r"text_model\.encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])\.lora_B\.weight"
)


def diffusers_032_text_ranks(state: dict, part: str = "text_encoder") -> dict[str, int]:
    """The ranks diffusers 0.32 finds for a text encoder; empty while the file has keys for it means IndexError."""
    inner = {key[len(part) + 1 :]: value for key, value in state.items() if key.split(".")[0] == part}
    return {key: value.shape[1] for key, value in inner.items() if _TEXT_RANK_KEY.fullmatch(key)}
