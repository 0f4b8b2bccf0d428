"""UI fixtures: a workspace in a temporary folder (the shapes-world upload, `shape_files`, is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def workspace(tmp_path: Path):
    from studio.workspace import Workspace

    return Workspace(tmp_path / "data")
