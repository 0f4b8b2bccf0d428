"""The Train tab's queue handlers and the app's queue worker (a server-side thread), without a browser."""

from __future__ import annotations

import json
import sys

import pytest

from studio.queue import RunnerBusy, RunnerLock, request_processing
from studio.train import jobs
from studio.train.config import resolve_config
from studio.ui import dataset_tab, queue_panel
from studio.workspace import Workspace

# a training process that writes a finished 2-step run at once
FINISHES = r"""
import json, os, sys, time
run = sys.argv[1]
with open(os.path.join(run, "events.jsonl"), "a") as s:
    for kind, fields in (("started", {"total_steps": 2, "pid": os.getpid()}), ("step", {"step": 2, "loss": 0.25,
                         "lr": 1e-3, "seconds": 0.1}), ("finished", {"step": 2})):
        s.write(json.dumps({"type": kind, "time": time.time(), **fields}) + "\n")
"""


@pytest.fixture()
def captioned(workspace, shape_files):
    """A dataset with trigger 'zq' (the preset's sample prompts name it), captioned by the pocket captioner."""
    dataset_tab.import_files(workspace, "shapes", shape_files, 64, "zq")
    dataset_tab.auto_caption(workspace, "shapes", "pocket", False)
    return workspace


def test_the_form_config_is_queued_with_a_sweep_and_shown(captioned):
    config = resolve_config(preset="lora-pocket", overrides={"steps": "40"})
    message = queue_panel.add_to_queue(captioned, config, "shapes", "rank=4,8\nlearning_rate=1e-3; ")
    assert message.startswith("Queued 2 entries as **sweep-1**")
    frame = queue_panel.queue_frame(captioned)
    assert list(frame["settings"]) == ["rank=4, learning_rate=1e-3", "rank=8, learning_rate=1e-3"]
    assert list(frame["status"]) == ["queued", "queued"] and list(frame["dataset"]) == ["shapes", "shapes"]
    assert queue_panel.sweep_ids(captioned) == ["sweep-1"]
    sweep = queue_panel.sweep_frame(captioned, "sweep-1")
    assert list(sweep.columns[:3]) == ["#", "rank", "learning_rate"] and list(sweep["rank"]) == ["4", "8"]
    assert queue_panel.sweep_frame(captioned, "sweep-7") is None
    for bad, text in ((None, "choose a dataset"), ("missing", "no dataset 'missing'")):
        with pytest.raises(ValueError, match=text):
            queue_panel.add_to_queue(captioned, config, bad, "")
    with pytest.raises(ValueError, match="unknown setting 'rnk'"):
        queue_panel.add_to_queue(captioned, config, "shapes", "rnk=4,8")
    assert len(queue_panel.queue_frame(captioned)) == 2  # nothing of a refused add was queued
    with pytest.raises(ValueError, match="number"):
        queue_panel.entry_number(1.5)


def test_the_worker_trains_the_queue_in_a_server_thread_and_goes_on_after_a_restart(captioned, monkeypatch):
    monkeypatch.setattr(jobs, "training_command", lambda run_dir: [sys.executable, "-c", FINISHES, str(run_dir)])
    config = resolve_config(preset="lora-pocket", overrides={"steps": "2"})
    queue_panel.add_to_queue(captioned, config, "shapes", "rank=4,8")
    store = captioned.queue.store
    with store.update() as state:
        state.entries[0].evaluate = state.entries[1].evaluate = False
    captioned.queue.poll_seconds = 0.05
    assert "one training at a time" in captioned.queue.start()
    with pytest.raises(RunnerBusy, match="already being processed"):  # a terminal's `studio queue run` meanwhile
        RunnerLock(captioned.data_dir).acquire()
    captioned.queue.join(timeout=60)
    assert [e.status for e in store.load().entries] == ["finished", "finished"]
    assert captioned.queue.describe() == "Stopped. 0 queued, 2 finished, 0 failed."
    assert list(queue_panel.queue_frame(captioned)["loss"]) == ["0.2500", "0.2500"]
    assert store.load().has_run(store.load().entries[0].run_id) and not store.load().has_run("other")

    # the app went down while processing: a new app (a fresh workspace object) goes on with what is queued
    queue_panel.add_to_queue(captioned, config, "shapes", "")
    with store.update() as state:
        state.entries[-1].evaluate = False
    request_processing(store, True)
    restarted = Workspace(captioned.data_dir)
    restarted.queue.poll_seconds = 0.05
    assert restarted.queue.resume_after_restart()
    restarted.queue.join(timeout=60)
    assert store.load().entries[-1].status == "finished" and not store.load().processing
    assert not Workspace(captioned.data_dir).queue.resume_after_restart()  # stopped queues stay stopped
    assert json.loads(store.path.read_text())["version"] == 1
    assert RunnerLock(captioned.data_dir).holder() is None
