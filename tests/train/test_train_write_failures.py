"""A run on a disk that fills up: a checkpoint that does not fit fails the run with one sentence naming the folder
and the space, and removes its half-written folder; a run folder that cannot be made is not left half made."""

from __future__ import annotations

import builtins
import errno
import re

import pytest
from conftest import tiny_config

from studio import runs
from studio.data import files
from studio.train.loop import TrainingStopped
from studio.train.start import create_run, run_training


def test_a_checkpoint_that_does_not_fit_fails_the_run_and_leaves_no_tmp(tmp_path, sd1_dir, shapes_folder, monkeypatch):
    import torch

    real_save, saves = torch.save, []

    def save_on_a_full_disk(obj, path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 2:  # the second checkpoint: part of the file is written, then the disk is full
            open(path, "wb").write(b"partial")
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4160 vs 4054")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_on_a_full_disk)
    run_dir = create_run(tiny_config(sd1_dir, steps=3, checkpoint_every=1), shapes_folder, root=tmp_path)
    with pytest.raises(TrainingStopped) as stopped:
        run_training(run_dir)
    folder = run_dir / "checkpoints"
    assert str(stopped.value).startswith(
        f"the checkpoint of step 2 was not saved: cannot write in {folder}: its disk is full ("
    )
    assert re.search(r"\(\d+ KB needed, [\d.]+ [KMG]B free\)", str(stopped.value))
    assert "inline_container" not in str(stopped.value)
    assert sorted(p.name for p in folder.iterdir()) == ["step-000001"]  # no .step-000002.*.tmp left
    state = runs.replay(run_dir)
    assert state.status == "failed" and state.reason == str(stopped.value)


def test_a_run_folder_that_cannot_be_written_is_removed(tmp_path, sd1_dir, shapes_folder, monkeypatch) -> None:
    real_open = builtins.open

    def full_disk(path, mode="r", *args, **kwargs):
        if "x" in mode:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(files, "open", full_disk, raising=False)
    with pytest.raises(files.WriteFailed, match="its disk is full"):
        create_run(tiny_config(sd1_dir), shapes_folder, run_id="r1", root=tmp_path / "runs")
    assert list((tmp_path / "runs").iterdir()) == []
