"""UI fixtures: a workspace in a temporary folder and shapes-world images to upload into it."""

from __future__ import annotations

from pathlib import Path

import pytest

SCENES = [
    ("circle", "red", "black"),
    ("square", "blue", "white"),
    ("triangle", "yellow", "gray"),
    ("diamond", "green", "brown"),
    ("circle", "purple", "white"),
]


@pytest.fixture(scope="session")
def shape_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Five 64 px shapes-world PNGs without captions, as a person would drop them."""
    from studio.pocket.world import Scene, render

    folder = tmp_path_factory.mktemp("upload")
    files = []
    for index, (shape, color, background) in enumerate(SCENES):
        path = folder / f"My Shape {index}.png"
        render(Scene(shape, color, background), 64).save(path)
        files.append(str(path))
    return files


@pytest.fixture()
def workspace(tmp_path: Path):
    from studio.workspace import Workspace

    return Workspace(tmp_path / "data")
