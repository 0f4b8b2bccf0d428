"""Where the project's files live. Every folder the studio reads or serves is under one of these."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POCKET_MODEL_DIR = PROJECT_ROOT / "assets" / "pocket"
DATA_DIR = Path(os.environ.get("STUDIO_DATA_DIR", PROJECT_ROOT / "data")).resolve()
