"""One real queue run on the pocket model: stopped while its training process loads, resumed by `studio queue run`,
trained (2 steps), scored by `studio eval` in its own process, and shown in the sweep table."""

from __future__ import annotations

import json
import time

import pytest

from studio import runs
from studio.cli import main
from studio.paths import POCKET_MODEL_DIR
from studio.queue import QueueRunner, QueueStore, add_entries, request_processing
from studio.train.config import resolve_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (POCKET_MODEL_DIR / "model_index.json").is_file(), reason="the pocket model is not built"),
]


@pytest.fixture()
def stars(tmp_path):
    from studio.pocket.world import Scene, render

    folder = tmp_path / "stars"
    folder.mkdir()
    for index, background in enumerate(("black", "white", "gray")):
        render(Scene("star", "yellow", background), 64).save(folder / f"star{index}.png")
        (folder / f"star{index}.txt").write_text(f"a zq on a {background} background", encoding="utf-8")
    return folder


def test_a_real_entry_stops_resumes_trains_and_is_scored(tmp_path, stars, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("STUDIO_DATA_DIR", str(data))
    settings = {"steps": "2", "batch_size": "1", "checkpoint_every": "0", "sample_every": "0"}
    config = resolve_config(
        preset="lora-pocket", overrides=settings | {"sample_prompts": '["a zq on a black background"]'}
    )
    store = QueueStore(data)
    (entry,) = add_entries(store, config, [stars], eval_steps=1)  # scored by default: the pocket model
    assert entry.evaluate

    request_processing(store, True)
    runner = QueueRunner(data)
    assert runner.tick().state == "training"  # its process is loading the model
    request_processing(store, False)  # the Stop button / Ctrl-C
    deadline = time.time() + 60
    while (progress := runner.tick()).state != "stopped":
        assert time.time() < deadline
        time.sleep(0.2)
    stopped = store.load().entry(entry.id)
    assert stopped.status == "queued" and "resumes" in stopped.reason
    run_dir = data / "runs" / stopped.run_id
    assert runs.replay(run_dir).status == "cancelled"

    assert main(["queue", "run", "--no-progress"]) == 0  # resumes the same run, trains it, scores it
    done = store.load().entry(entry.id)
    assert (done.status, done.run_id, done.reason) == ("finished", stopped.run_id, None)
    assert runs.replay(run_dir).status == "finished" and runs.replay(run_dir).last_step == 2
    card = json.loads((run_dir / "eval" / "scorecard.json").read_text())
    assert card["judge"] == "pocket" and [c["step"] for c in card["checkpoints"]] == [0, 2]
    capsys.readouterr()
    assert main(["queue", "show", entry.sweep]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].endswith("best step") and table[2].split()[:2] == ["1", "finished"]
    assert table[2].split()[-1] == str(card["best"]["step"]) and progress.state == "stopped"
