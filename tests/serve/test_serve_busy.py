"""A busy answer never waits for the work it is refused for. A training start writes its run folder (a prepared copy
of the dataset: seconds) before its process starts; a second start meanwhile, from the same workspace or another
visitor's, is refused at once, not after the first has written its folder (the 503 of `POST /train` took 2.5 s)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from studio.train import jobs as jobs_module
from studio.train.jobs import JobBusy, JobManager, JobPool


@pytest.fixture()
def slow_create(monkeypatch):
    """create_run that holds until released (the first start's folder being written); no process is started."""
    writing, release = threading.Event(), threading.Event()

    def create_run(config, dataset, run_id=None, root=None):
        writing.set()
        assert release.wait(10), "the test never released the first start"
        if config == "broken":
            raise ValueError("the dataset has no images")
        folder = Path(root) / f"run-{config}"
        folder.mkdir(parents=True)
        return folder

    def launch(self, run_dir):
        self._processes[run_dir.name] = FakeProcess()

    monkeypatch.setattr("studio.train.jobs.create_run", create_run)
    monkeypatch.setattr(jobs_module.JobManager, "_launch", launch)
    return writing, release


class FakeProcess:
    pid = 1

    def poll(self):
        return None  # still training


def start_in_background(manager: JobManager, config: str) -> tuple[threading.Thread, list]:
    outcome: list = []

    def start() -> None:
        try:
            outcome.append(manager.start(config, "shapes"))
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=start)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("same_workspace", [True, False])
def test_a_second_start_is_refused_while_the_first_still_writes_its_run(tmp_path, slow_create, same_workspace) -> None:
    writing, release = slow_create
    pool = JobPool(max_jobs=1)
    first_manager = JobManager(tmp_path / "a", pool=pool)
    second_manager = first_manager if same_workspace else JobManager(tmp_path / "b", pool=pool)
    first, first_outcome = start_in_background(first_manager, "one")
    assert writing.wait(10)
    second, second_outcome = start_in_background(second_manager, "two")
    second.join(5)
    try:
        # answered while the first start is still writing: it did not wait for the lock the first one holds
        assert not second.is_alive(), "the second start waited for the first to write its run folder"
        assert isinstance(second_outcome[0], JobBusy), second_outcome
        assert "one training job at a time" in str(second_outcome[0])
    finally:
        release.set()
        first.join(10)
        second.join(10)
    assert first_outcome == [tmp_path / "a" / "runs" / "run-one"]
    with pytest.raises(JobBusy, match="one training job at a time"):  # and once it trains, as before
        second_manager.start("three", "shapes")


def test_a_start_that_fails_to_write_its_run_frees_the_slot(tmp_path, slow_create) -> None:
    writing, release = slow_create
    manager = JobManager(tmp_path / "a")
    release.set()
    with pytest.raises(ValueError, match="no images"):
        manager.start("broken", "shapes")
    assert manager.live_processes() == 0
    assert manager.start("one", "shapes").name == "run-one"
