"""The adapters a user can pick in the playground: our runs' LoRAs, embeddings and SVDiff shifts, and uploads.

Everything listed or accepted lies inside the data folder: uploads are copied into `data/loras/`,
`data/embeddings/` or `data/svdiff/`, and a path from elsewhere (say, inside a dropped PNG) is refused by `inside_data`.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from studio.paths import data_dir
from studio.runs import CONFIG, replay, runs_root
from studio.runs.checkpoints import list_checkpoints
from studio.runs.layout import EMBEDDING_FILE, KOHYA_FILE, LORA_FILE, LORA_FOLDER, OUTPUTS, SVDIFF_FILE
from studio.runs.names import run_label as named


def uploads_dir(kind: str) -> Path:
    if kind not in ("loras", "embeddings", "svdiff"):
        raise ValueError(f"unknown upload kind {kind!r}")
    return data_dir() / kind


def inside_data(path: str | Path) -> Path:
    """`path` resolved, if it lies inside the data folder; ValueError otherwise."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_relative_to(data_dir()):
        raise ValueError(f"{Path(path).name}: only files inside the studio's data folder can be used here")
    return resolved


@dataclass(frozen=True)
class Choice:
    label: str
    path: str


def _runs() -> list[Path]:
    root = runs_root()
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if (p / CONFIG).is_file()), key=lambda p: p.name, reverse=True)


def run_label(run: Path) -> str:
    """How a run is named in every list of this module: its name and trigger word ('stars · LoRA · trigger zq')."""
    return named(run)


def adapter_label(path: str | Path) -> str:
    """A short name for an adapter path, as the lists name it: a run's export or checkpoint by the run's label
    ('stars · LoRA · trigger zq', '... step 200', '... (kohya)'), a file by its name without '.safetensors'."""
    path = Path(path)
    if path.parent.name == "checkpoints" and path.name.startswith("step-"):
        step = path.name.removeprefix("step-")
        return f"{run_label(path.parent.parent)} step {int(step) if step.isdigit() else step}"
    if path.parent.name in ("loras", "embeddings", "svdiff") and path.parent.parent == data_dir():
        return path.stem
    run = next((p for p in path.parents if p.parent.name == "runs"), None)  # a run's export, in any of its forms
    if run is not None:
        return run_label(run) + (" (kohya)" if path.name == KOHYA_FILE else "")
    return path.stem if path.suffix == ".safetensors" else path.name


def list_loras() -> list[Choice]:
    """Newest run first: each run's exported LoRA (diffusers and kohya), then uploaded files."""
    choices = []
    for run in _runs():
        for file in (run / OUTPUTS / LORA_FOLDER / LORA_FILE, run / OUTPUTS / KOHYA_FILE):
            if file.is_file():
                choices.append(Choice(adapter_label(file), str(file)))
    folder = uploads_dir("loras")
    if folder.is_dir():
        choices += [Choice(adapter_label(p), str(p)) for p in sorted(folder.glob("*.safetensors"))]
    return choices


def list_embeddings() -> list[Choice]:
    """Textual-inversion exports of our runs (diffusers and A1111 files) and uploaded embeddings."""
    choices = []
    for run in _runs():
        if (run / OUTPUTS / EMBEDDING_FILE).is_file():
            choices.append(Choice(run_label(run), str(run / OUTPUTS / EMBEDDING_FILE)))
    folder = uploads_dir("embeddings")
    if folder.is_dir():
        choices += [Choice(adapter_label(p), str(p)) for p in sorted(folder.glob("*.safetensors"))]
    return choices


def list_svdiffs() -> list[Choice]:
    """SVDiff exports of our runs (spectral shifts) and files put in data/svdiff/."""
    choices = [Choice(run_label(run), str(run / OUTPUTS / SVDIFF_FILE)) for run in _runs()]
    choices = [c for c in choices if Path(c.path).is_file()]
    folder = uploads_dir("svdiff")
    if folder.is_dir():
        choices += [Choice(adapter_label(p), str(p)) for p in sorted(folder.glob("*.safetensors"))]
    return choices


def list_checkpoint_runs() -> list[Choice]:
    """Runs with at least one saved checkpoint, newest first, labelled with their status and checkpoint count; each
    choice's value is the run id (`find_run` reads it back), so a page holds no server path."""
    choices = []
    for run in _runs():
        count = len(list_checkpoints(run))
        if count:
            many = "s" if count != 1 else ""
            choices.append(Choice(f"{run_label(run)} ({replay(run).status}, {count} checkpoint{many})", run.name))
    return choices


def listing_signature() -> tuple:
    """What the lists above depend on, cheaply (directory listings, no file read): it changes when a run saves a
    checkpoint or an export, or a file is uploaded, so a page can read the lists again only then."""
    runs = tuple(
        (run.name, len(list_checkpoints(run)), tuple(sorted(p.name for p in (run / OUTPUTS).glob("*"))))
        for run in _runs()
    )
    uploads = tuple(
        tuple(sorted(p.name for p in uploads_dir(kind).glob("*.safetensors")))
        for kind in ("loras", "embeddings", "svdiff")
    )
    return runs, uploads


def find_run(text: str) -> Path:
    """The run folder that `text` names: a run id, `runs/<id>`, or a path to it inside the data folder."""
    text = (text or "").strip().rstrip("/")
    if not text:
        raise ValueError("pick a run with saved checkpoints (train one in the Train tab)")
    root = Path(runs_root()).expanduser().resolve()
    for candidate in (root / text.removeprefix("runs/"), data_dir() / text, Path(text).expanduser()):
        folder = candidate.resolve()
        if folder.is_relative_to(data_dir()) and (folder / CONFIG).is_file():
            return folder
    raise ValueError(f"there is no run {text!r}: pick one from the list, or type a run id as the Runs tab shows it")


def import_upload(source: str | Path, kind: str) -> Path:
    """Copy an uploaded .safetensors file into data/<kind>/ under a safe name; returns the copy."""
    from safetensors import safe_open

    source = Path(source)
    if source.suffix != ".safetensors":
        raise ValueError(f"{source.name}: only .safetensors files can be uploaded (pickle files can run code)")
    with safe_open(str(source), "pt"):  # a broken or disguised file fails here, before it is kept
        pass
    target = new_file(kind, source.stem)
    shutil.copyfile(source, target)
    return target


def new_file(kind: str, name: str) -> Path:
    """A new `data/<kind>/<safe name>.safetensors` path that names no existing file (-2, -3, ... appended)."""
    folder = uploads_dir(kind)
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "-", name.removesuffix(".safetensors")).strip("-.") or "upload"
    target = folder / f"{stem}.safetensors"
    counter = 2
    while target.exists():
        target = folder / f"{stem}-{counter}.safetensors"
        counter += 1
    return target
