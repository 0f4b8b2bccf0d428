"""A full or read-only disk: one sentence naming the folder, nothing half-written, and `dataset check` finds any
file an import left outside the manifest. The disk is simulated (the tests run as root, where chmod stops nothing)."""

from __future__ import annotations

import builtins
import errno
import re
from pathlib import Path

import pytest

from studio.cli import main
from studio.data import files
from studio.data.check import check_dataset
from studio.data.dataset import Dataset
from studio.pocket import world


@pytest.fixture()
def shapes(tmp_path) -> Path:
    folder = tmp_path / "upload"
    folder.mkdir()
    for index, scene in enumerate(world.scenes(6, seed=3)):
        world.render(scene, 96).save(folder / f"shape{index}.png")
        (folder / f"shape{index}.txt").write_text(scene.caption, encoding="utf-8")
    return folder


def disk_fills_up(monkeypatch, after: int) -> None:
    """Every atomic write after the first `after` fails as on a full disk: its temporary file is made, then the
    write runs out of space (so the temporary must be cleaned up)."""
    real_open, writes = builtins.open, []

    def open_on_a_filling_disk(path, mode="r", *args, **kwargs):
        if "x" in mode:
            writes.append(path)
            if len(writes) > after:
                real_open(path, mode, *args, **kwargs).close()
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(files, "open", open_on_a_filling_disk, raising=False)


def read_only_disk(monkeypatch) -> None:
    """Nothing can be created, and an unlink fails too (Linux checks the mount before looking the name up)."""

    def refuse(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(files, "open", refuse, raising=False)
    monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: refuse(self))


def test_a_write_failure_is_one_sentence_naming_the_folder_and_the_space(tmp_path) -> None:
    full = files.write_failure(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "a.png")), None, 3 << 20)
    assert re.match(
        rf"cannot write in {tmp_path}: its disk is full \(3\.0 MB needed, [\d.]+ [KMG]B free\); ", str(full)
    )
    assert "STUDIO_DATA_DIR" in str(full)
    read_only = files.write_failure(OSError(errno.EROFS, "Read-only file system", str(tmp_path / "x.txt")))
    assert str(read_only).startswith(f"cannot write in {tmp_path}: it is on a read-only file system")
    torch_error = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4160 vs 4054")
    assert "its disk is full" in str(files.library_write_failure(torch_error, tmp_path))
    assert files.write_failure(ValueError("no")) is None and files.write_failure(OSError(errno.EIO, "io")) is None


def test_the_clean_up_of_a_failed_write_does_not_hide_its_error(tmp_path, monkeypatch) -> None:
    read_only_disk(monkeypatch)
    with pytest.raises(files.WriteFailed, match=f"cannot write in {tmp_path}: it is on a read-only file system"):
        files.write_bytes_atomic(tmp_path / "caption.txt", b"a circle")


def test_a_failed_add_on_a_full_disk_rolls_back_and_says_so_in_one_line(tmp_path, shapes, monkeypatch, capsys):
    root = ["--root", str(tmp_path / "datasets")]
    first = sorted(shapes.glob("*"))[:4]  # two images with their captions
    assert main(["dataset", "import", *map(str, first), "--name", "shapes", "--resolution", "64", *root]) == 0
    images = tmp_path / "datasets" / "shapes" / "images"
    before = {path.name: path.read_bytes() for path in images.iterdir()}
    manifest = (images.parent / "manifest.json").read_text()
    capsys.readouterr()

    disk_fills_up(monkeypatch, after=2)  # two more images fit, the third does not
    code = main(["dataset", "import", str(shapes), "--name", "shapes", "--add", "--resolution", "64", *root])
    error = capsys.readouterr().err
    assert code == 1 and "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert f"cannot write in {images}: its disk is full" in error
    monkeypatch.undo()
    # as it was: no image outside the manifest, no temporary file, the same manifest
    assert {path.name: path.read_bytes() for path in images.iterdir()} == before
    assert (images.parent / "manifest.json").read_text() == manifest
    report = check_dataset(Dataset.load(images.parent))
    assert report.images == 2 and "file-outside-manifest" not in report.counts()


def test_a_new_dataset_that_fails_to_import_is_not_left_half_made(tmp_path, shapes, monkeypatch, capsys):
    disk_fills_up(monkeypatch, after=3)
    code = main(["dataset", "import", str(shapes), "--name", "fresh", "--root", str(tmp_path / "datasets")])
    assert code == 1 and "its disk is full" in capsys.readouterr().err
    assert not (tmp_path / "datasets" / "fresh").exists()


def test_dataset_check_reports_files_outside_the_manifest(tmp_path, shapes, capsys):
    root = ["--root", str(tmp_path / "datasets")]
    assert main(["dataset", "import", str(shapes), "--name", "shapes", "--resolution", "64", *root]) == 0
    images = tmp_path / "datasets" / "shapes" / "images"
    (images / "stray-0095.png").write_bytes((shapes / "shape0.png").read_bytes())  # what a failed --add left
    (images / ".shape1.png.1a2b3c4d.tmp").write_bytes(b"half")
    capsys.readouterr()
    main(["dataset", "check", "shapes", *root])
    out = capsys.readouterr().out
    assert "2 file-outside-manifest" in out and "no problems" not in out
    assert "stray-0095.png" in out and ".shape1.png.1a2b3c4d.tmp" in out


def test_generate_into_a_read_only_folder_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    read_only_disk(monkeypatch)
    out = tmp_path / "outputs"
    code = main(["generate", "-p", "a red circle on a black background", "--steps", "1", "--out", str(out)])
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # after the libraries' own warnings
    assert code == 1
    assert last_line.startswith(f"studio generate: cannot write in {out}: it is on a read-only file system")


def test_the_page_and_rest_tell_a_write_failure_in_one_sentence(tmp_path, shapes, monkeypatch) -> None:
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from studio.data.importer import ImportOptions, import_dataset
    from studio.data.validate import ImageRules
    from studio.generate.engine import GenerationEngine
    from studio.serve import rest
    from studio.serve.admission import Admission
    from studio.ui.errors import as_message, friendly
    from studio.workspace import Workspaces

    def handler():
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs" / "x" / "config.yaml"))

    with pytest.raises(gr.Error, match=f"cannot write in {tmp_path}/runs/x: its disk is full"):
        friendly(handler)()
    assert as_message(handler)().startswith(f"⚠ cannot write in {tmp_path}/runs/x: its disk is full")

    workspaces = Workspaces(tmp_path / "data")
    import_dataset("shapes", [shapes], workspaces.get().datasets_root, ImportOptions(ImageRules(resolution=64)))
    disk_fills_up(monkeypatch, after=0)
    client = TestClient(FastAPI(**rest.app_kwargs(GenerationEngine(), workspaces, Admission())))
    answer = client.post("/api/v1/train", json={"preset": "lora-pocket", "dataset": "shapes", "settings": {"steps": 2}})
    assert answer.status_code == 507 and answer.json()["error"] == "storage", answer.text
    # a run trains on a prepared copy of the dataset, the first thing it writes
    prepared = tmp_path / "data" / "datasets" / "shapes" / "prepared"
    assert answer.json()["message"].startswith(f"cannot write in {prepared}: its disk is full")
    assert list(prepared.iterdir()) == [] and not list((tmp_path / "data").glob("runs/*"))  # nothing half made
