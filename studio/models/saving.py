"""Writing a pipeline as a diffusers folder every reader loads: `save_pretrained` (safetensors), then what older
readers need: transformers 4's text-encoder key names, and the tokenizer's vocab.json + merges.txt beside
tokenizer.json, so transformers 4.4x-5.x all read it (DreamBooth and full fine-tune exports, the pocket model)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TEXT_ENCODERS = ("text_encoder", "text_encoder_2")


def save_safetensors(state: dict, path: Path, metadata: dict[str, str]) -> Path:
    """Write through a temporary file, so a reader never sees half a file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    save_file(state, str(temporary), metadata=metadata)
    temporary.replace(path)
    return path


def with_text_model(state: Mapping[str, Any]) -> dict[str, Any]:
    """`text_encoder.encoder.layers…` (transformers 5) as `text_encoder.text_model.encoder.layers…` (4 and the tools)."""
    renamed = {}
    for key, value in state.items():
        part, _, rest = key.partition(".")
        if part in TEXT_ENCODERS and not rest.startswith(("text_model.", "text_projection.")):
            key = f"{part}.text_model.{rest}"
        renamed[key] = value
    return renamed


def save_pipeline_folder(pipe: Any, folder: Path) -> Path:
    """`save_pretrained` (safetensors), then what older readers need: transformers 4 key names, vocab.json + merges.txt."""
    pipe.save_pretrained(folder, safe_serialization=True)
    for name in TEXT_ENCODERS:
        if type(getattr(pipe, name, None)).__name__ == "CLIPTextModel":
            _text_model_keys(folder / name)
    for name in ("tokenizer", "tokenizer_2"):
        tokenizer = getattr(pipe, name, None)
        if tokenizer is not None and (folder / name).is_dir():
            write_vocab_and_merges(tokenizer, folder / name)
    return folder


def _text_model_keys(folder: Path) -> None:
    """transformers 5 writes CLIPTextModel's weights as `encoder.…`; 4 reads only `text_model.encoder.…` (and 5
    reads both), so rename them in place."""
    from safetensors import safe_open

    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), "pt") as stream:
            metadata = stream.metadata() or {}
            keys = list(stream.keys())
            if all(key.startswith(("text_model.", "text_projection.")) for key in keys):
                continue
            state = {f"text_encoder.{key}": stream.get_tensor(key) for key in keys}
        state = {key.split(".", 1)[1]: value for key, value in with_text_model(state).items()}
        save_safetensors(state, file, metadata)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        content = json.loads(index.read_text(encoding="utf-8"))
        renamed = with_text_model({f"text_encoder.{k}": v for k, v in content["weight_map"].items()})
        content["weight_map"] = {key.split(".", 1)[1]: value for key, value in renamed.items()}
        index.write_text(json.dumps(content, indent=2), encoding="utf-8")


def write_vocab_and_merges(tokenizer: Any, folder: Path) -> None:
    """CLIP's vocab.json + merges.txt, from the BPE model behind tokenizer.json (transformers 5 writes only that)."""
    if not ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()):
        tokenizer.backend_tokenizer.model.save(str(folder))
