"""Where the project's files live, so no module hard-codes a relative path.

Paths are derived from this file's location (the project root is the folder
that holds the `studio` package), so they work whatever the current directory is.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT: Path = Path(__file__).resolve().parent.parent

# The small SD1-style model trained by `studio.pocket.pretrain` and shipped with the project.
POCKET_MODEL_DIR: Path = PROJECT_ROOT / "assets" / "pocket"
# Its LCM-LoRA (4-step sampling), made by `studio distill lcm`.
POCKET_LCM_LORA_DIR: Path = PROJECT_ROOT / "assets" / "pocket-lcm-lora"

# User data (datasets, runs, exports); movable with STUDIO_DATA_DIR, e.g. onto a bigger disk.
_data_env = os.environ.get("STUDIO_DATA_DIR")
DATA_DIR: Path = Path(_data_env).expanduser().resolve() if _data_env else PROJECT_ROOT / "data"


def data_dir() -> Path:
    """The data folder now: STUDIO_DATA_DIR if set (a training subprocess, a test), else DATA_DIR. The one place
    it is resolved; everything under it (datasets/, runs/, loras/, outputs/) is found from here."""
    env = os.environ.get("STUDIO_DATA_DIR")
    return Path(env).expanduser().resolve() if env else DATA_DIR


def is_pocket_model(base_model: str | None) -> bool:
    """Whether a base-model setting names the pocket model: "pocket" (or nothing) or a path to its folder."""
    spec = (base_model or "").strip()
    return spec in ("", "pocket") or Path(spec).expanduser().resolve() == POCKET_MODEL_DIR.resolve()


POCKET_RESOLUTION = 64


def model_resolution(base_model: str | None) -> int:
    """The size a model was trained at, hence the one to train and import at: pocket 64, SDXL 1024, else 512
    (SD 1.x and 2.x). Told from the name alone, so a dataset command needs no model on disk."""
    if is_pocket_model(base_model):
        return POCKET_RESOLUTION
    return 1024 if "xl" in (base_model or "").lower() else 512
