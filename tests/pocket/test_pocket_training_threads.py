"""The pocket model trains on one thread (faster there, and it leaves a core to the UI); other models keep the
process's threads, and the count is restored after training."""

from __future__ import annotations

import pytest
import torch

from studio.pocket.datasets import write_concept_folder
from studio.train.config import resolve_config
from studio.train.start import create_run, run_training


@pytest.fixture()
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _threads_while_training(tmp_path, base_model: str, resolution: int) -> set[int]:
    folder = write_concept_folder(tmp_path / f"stars-{resolution}", "star", "zq", side=resolution)
    overrides = {
        "base_model": base_model,
        "resolution": str(resolution),
        "steps": "2",
        "batch_size": "1",
        "sample_every": "0",
        "checkpoint_every": "0",
        "sample_prompts": "[a zq]",
    }
    run_dir = create_run(resolve_config("lora-pocket", overrides=overrides), folder, root=tmp_path / "runs")
    seen = set()

    def record(event: dict) -> None:
        if event["type"] == "step":
            seen.add(torch.get_num_threads())

    assert run_training(run_dir, on_event=record, export=False) == "finished"
    return seen


def test_the_pocket_model_trains_on_one_thread_and_gives_the_threads_back(tmp_path, two_threads):
    assert _threads_while_training(tmp_path, "pocket", 64) == {1}
    assert torch.get_num_threads() == 2


def test_another_model_trains_on_the_threads_it_was_given(tmp_path, two_threads, sd1_dir):
    assert _threads_while_training(tmp_path, str(sd1_dir), 32) == {2}
