"""Checkpoints of a run: written whole or not at all, listed oldest first, loaded without unpickling code.

A checkpoint is a folder `checkpoints/step-NNNNNN/` with the trained weights (safetensors), the optimizer, LR
scheduler and RNG states (`torch.save` of tensors and plain containers, read back with `weights_only=True`) and a
small JSON. It is built in a hidden `.step-*.tmp` folder, fsynced and renamed into place, so a process killed
mid-save leaves the previous checkpoint usable. Under DeepSpeed the optimizer state is partitioned across
processes, so it is not in training_state.pt: each process writes its part with DeepSpeed's own
`save_checkpoint` into `deepspeed/` of the same hidden folder before the rename (distributed.py).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np

from studio.data.files import writing_in
from studio.runs.layout import CHECKPOINTS, STATE_JSON, TRAINABLE, TRAINING_STATE

# Test hook, "STEP:SECONDS": sleep in the middle of saving the checkpoint of STEP, so a test can SIGKILL there.
SLEEP_IN_SAVE_ENV = "STUDIO_TEST_SLEEP_IN_SAVE"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as stream:
        os.fsync(stream.fileno())


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first. Half-written ones are hidden `.step-*.tmp` folders and never listed."""
    folder = run_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("step-"))


def _test_sleep(step: int) -> None:
    hook = os.environ.get(SLEEP_IN_SAVE_ENV)
    if hook:
        at, _, seconds = hook.partition(":")
        if int(at) == step:
            time.sleep(float(seconds))


def building_folder(run_dir: Path, step: int) -> Path:
    """The hidden, empty folder a checkpoint of `step` is built in (never listed until renamed)."""
    final = run_dir / CHECKPOINTS / checkpoint_name(step)
    building = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    return building


def save_checkpoint(run_dir: Path, state: dict, keep: int, building: Path | None = None) -> Path:
    """Write a checkpoint beside the others and rename it into place: it exists whole or not at all.

    `building`: a folder from building_folder() that already holds files of its own (DeepSpeed's optimizer
    partitions, written by every process); they are fsynced and renamed with the rest."""
    final = run_dir / CHECKPOINTS / checkpoint_name(state["step"])
    try:
        # a full disk makes torch.save fail with "[enforce fail at inline_container.cc]": say where and how much
        with writing_in(final.parent, needed=tensor_bytes(state["trainable"]) + tensor_bytes(state["torch"])):
            if building is None:
                building = building_folder(run_dir, state["step"])
            _write_checkpoint(building, final, state)
    except BaseException:
        if building is not None:  # nothing half-written stays behind
            shutil.rmtree(building, ignore_errors=True)
        raise
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def tensor_bytes(value: object) -> int:
    """Bytes of the tensors in a (nested) state: what writing it needs, give or take the file headers."""
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(tensor_bytes(v) for v in value)
    size = getattr(value, "nbytes", None)
    return size if isinstance(size, int) else 0


def _write_checkpoint(building: Path, final: Path, state: dict) -> None:
    import torch  # here, not at the top: listing checkpoints (the UI) must not import torch
    from safetensors.torch import save_file

    save_file(state["trainable"], str(building / TRAINABLE))
    _test_sleep(state["step"])
    torch.save(state["torch"], building / TRAINING_STATE)
    (building / STATE_JSON).write_text(json.dumps(state["json"]), encoding="utf-8")
    for path in sorted(building.rglob("*"), reverse=True):  # files before the folders that hold them
        if path.is_dir():
            _fsync_dir(path)
        else:
            _fsync_file(path)
    _fsync_dir(building)
    if final.exists():  # the same step saved again (save_now right after a periodic save)
        shutil.rmtree(final)
    os.replace(building, final)
    _fsync_dir(final.parent)


def load_checkpoint(folder: Path) -> dict:
    import torch
    from safetensors.torch import load_file

    return {
        "trainable": load_file(str(folder / TRAINABLE)),
        # our own file, and still only tensors and plain containers allowed
        "torch": torch.load(folder / TRAINING_STATE, weights_only=True),
        "json": json.loads((folder / STATE_JSON).read_text(encoding="utf-8")),
    }


def rng_state_json() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss],
    }


def restore_rng_state(data: dict) -> None:
    kind, keys, pos, has_gauss, cached = data["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = data["python"]
    random.setstate((version, tuple(internal), gauss))


def seed_everything(seed: int) -> None:
    """Seed every global RNG a run draws from (their states are then checkpointed above)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
