"""Runs that never get lost: exact resume after cancel, and a SIGKILL in the middle of a checkpoint save."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from conftest import RESUME_SETTINGS, assert_same_weights, final_weights, tiny_config

from studio import runs
from studio.runs.checkpoints import SLEEP_IN_SAVE_ENV, list_checkpoints
from studio.train.start import create_run, resume_run, run_training

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_cancel_at_step_k_then_resume_is_bit_identical(tmp_path, sd1_dir, shapes_folder, uninterrupted_weights) -> None:
    run_dir = create_run(tiny_config(sd1_dir, **RESUME_SETTINGS), shapes_folder, root=tmp_path)

    def cancel_at_3(event):
        if event["type"] == "step" and event["step"] == 3:
            runs.send_command(run_dir, "cancel")

    # step 3 is between the checkpoints at 2 and 4: cancel itself must save the exact state
    assert run_training(run_dir, on_event=cancel_at_3, export=False) == "cancelled"
    state = runs.replay(run_dir)
    assert (state.status, state.last_step) == ("cancelled", 3)
    assert [c["step"] for c in state.checkpoints] == [2, 3]

    assert resume_run(run_dir) == "finished"
    assert_same_weights(final_weights(run_dir), uninterrupted_weights)
    state = runs.replay(run_dir)
    assert state.status == "finished" and state.last_step == RESUME_SETTINGS["steps"]
    assert [step for step, _ in state.losses] == list(range(1, RESUME_SETTINGS["steps"] + 1))


def test_sigkill_during_checkpoint_save_leaves_the_previous_one_resumable(
    tmp_path, sd1_dir, shapes_folder, uninterrupted_weights
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(tiny_config(sd1_dir, **RESUME_SETTINGS).to_yaml())
    env = {
        **os.environ,
        "STUDIO_DATA_DIR": str(tmp_path / "data"),
        SLEEP_IN_SAVE_ENV: "4:60",  # the save of step 4 stops half-way (weights written, the rest not)
        # bit-identical needs the same thread count as the reference run, which ran in this process
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
        "STUDIO_THREADS": str(torch.get_num_threads()),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    command = [sys.executable, "-m", "studio", "train", "--config", str(config_file), "--dataset", str(shapes_folder)]
    command += ["--run-id", "killed", "--no-progress"]
    process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    run_dir = tmp_path / "data" / "runs" / "killed"
    try:
        deadline = time.monotonic() + 120
        while not list((run_dir / "checkpoints").glob(".step-000004.*.tmp/trainable.safetensors")):
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "the run never reached the save of step 4"
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # the half-written save is invisible; step 2 is whole and the run is resumable
    assert [p.name for p in list_checkpoints(run_dir)] == ["step-000002"]
    state = runs.replay(run_dir)
    assert state.status == "interrupted" and [c["step"] for c in state.checkpoints] == [2]

    assert resume_run(run_dir) == "finished"
    assert_same_weights(final_weights(run_dir), uninterrupted_weights)
    assert not list((run_dir / "checkpoints").glob(".*"))
