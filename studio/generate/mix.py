"""Save the playground's current adapter mix as one LoRA file, named by the LoRAs a person knows.

The merge itself (studio.adapters.merge) is exact: one kohya LoRA of the summed ranks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio.adapters.kohya import kohya_file_metadata
from studio.adapters.merge import mix_state_dict
from studio.adapters.stack import LoraSpec
from studio.generate.library import adapter_label
from studio.models.saving import save_safetensors


def describe_mix(loras: list[LoraSpec]) -> str:
    """The switched-on LoRAs by the names a person knows them by: 'stars · LoRA · trigger zq 0.8, bold -0.5'."""
    return ", ".join(f"{adapter_label(spec.path)} {spec.weight:g}" for spec in loras if spec.enabled)


def save_mix(engine: Any, model: str, loras: list[LoraSpec], path: str | Path) -> Path:
    """Merge the enabled `loras` at their weights (on base `model`) into one .safetensors LoRA at `path`."""
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
