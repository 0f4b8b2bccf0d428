"""Which file an adapter path means, and reading it safely: a file, a run folder's export or one of its
checkpoints; pickle files only on an explicit opt-in (they can run code when opened)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from studio.runs.layout import CONFIG, LORA_FILE, LORA_FOLDER, OUTPUTS, SVDIFF_FILE, TRAINABLE

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def read_tensors(path: Path, allow_pickle: bool = False) -> dict:
    """A file's tensors: safetensors always; pickle only when the user opted in, and then without running code."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if path.suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise ValueError(
                f"{path.name} is a pickle file, which can run code when opened; convert it to .safetensors "
                "or allow pickle files explicitly (--allow-pickle) if you trust it"
            )
        import torch

        return torch.load(str(path), map_location="cpu", weights_only=True)
    raise ValueError(f"{path.name}: expected a .safetensors file")


def lora_source(path: str | Path) -> Path:
    """The file (or checkpoint folder) a LoRA path means; FileNotFoundError / ValueError say what is wrong."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no LoRA at {path}")
    if path.is_file():
        return path
    if (path / TRAINABLE).is_file():
        return path  # a run checkpoint
    for candidate in (path / LORA_FILE, path / OUTPUTS / LORA_FOLDER / LORA_FILE):
        if candidate.is_file():
            return candidate
    if (path / CONFIG).is_file():
        raise ValueError(f"run {path.name} has no exported LoRA yet (export it, or pick one of its checkpoints)")
    raise ValueError(f"{path} holds no LoRA ({LORA_FILE} or a run checkpoint)")


@contextmanager
def peft_keys_only(path: Path) -> Iterator[Path]:
    """`path`, or a temporary copy whose keys are all in peft's form.

    diffusers' `convert_state_dict_to_diffusers` renames only attention layers (`to_k.lora_A` -> `to_k.lora.down`);
    a LoRA that also adapts convolutions or feed-forward layers comes out with both forms in one file, and
    diffusers' loader then picks the peft form and silently drops every `lora.down` / `lora.up` layer.
    """
    from safetensors import safe_open

    with safe_open(str(path), "pt") as stream:
        keys = list(stream.keys())
        mixed = any(".lora.down." in k for k in keys) and any(".lora_A." in k for k in keys)
        if not mixed:
            yield path
            return
        metadata = stream.metadata()
        tensors = {_peft_key(k): stream.get_tensor(k) for k in keys}
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / path.name
        save_file(tensors, str(copy), metadata=metadata)
        yield copy


def svdiff_source(path: str | Path) -> Path:
    """The shift file an SVDiff path means: the file, a run's export, or a run checkpoint's trained state."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no SVDiff file at {path}")
    if path.is_file():
        return path
    for candidate in (path / SVDIFF_FILE, path / OUTPUTS / SVDIFF_FILE, path / TRAINABLE):
        if candidate.is_file():
            return candidate  # a checkpoint of an SVDiff run holds the shifts under the export's own keys
    if (path / CONFIG).is_file():
        raise ValueError(f"run {path.name} has no SVDiff export yet (export it, or pick one of its checkpoints)")
    raise ValueError(f"{path} holds no SVDiff file ({SVDIFF_FILE} or a run checkpoint)")


def _peft_key(key: str) -> str:
    return key.replace(".lora.down.", ".lora_A.").replace(".lora.up.", ".lora_B.")
