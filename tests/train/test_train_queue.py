"""The training queue: persistence, sweep expansion, order, one training at a time, stop / restart / resume.

Most tests replace the training process by a short Python program that writes a run's events the way the loop
does (what is tested is the queue's part); one test trains real pocket runs (tests/train/test_train_queue_real.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from studio import runs
from studio.cli import main
from studio.queue import (
    QueueRunner,
    QueueStore,
    RunnerBusy,
    RunnerLock,
    add_entries,
    remove_entry,
    request_processing,
    retry_entry,
)
from studio.queue.plan import parse_sweeps, split_values
from studio.queue.table import format_sweep, queue_rows, sweep_table
from studio.train import jobs
from studio.train.config import resolve_config

# Writes the events of a 3-step run; stops at the next step when control.json counts a cancel. Logs its start and
# end (with the time) to $QUEUE_TEST_LOG, so a test can see the order and that no two overlapped.
FAKE_TRAINING = r"""
import json, os, sys, time
run = sys.argv[1]
def event(kind, **fields):
    with open(os.path.join(run, "events.jsonl"), "a") as s:
        s.write(json.dumps({"type": kind, "time": time.time(), **fields}) + "\n")
def log(word):
    with open(os.environ["QUEUE_TEST_LOG"], "a") as s:
        s.write(f"{word} {os.path.basename(run)} {time.time()}\n")
resumed = os.path.exists(os.path.join(run, "events.jsonl"))
log("resume" if resumed else "start")
control = lambda: json.load(open(os.path.join(run, "control.json")))["cancel"]
cancels = control()  # commands are counters: only one sent after this start counts (as in the loop)
event("started", step=0, total_steps=3, pid=os.getpid())
for step in range(1, 4):
    time.sleep(float(os.environ.get("QUEUE_TEST_STEP", "0.2")))
    event("step", step=step, loss=1.0 / step, lr=1e-3, seconds=0.1)
    if control() > cancels:
        event("cancelled", step=step)
        log("cancelled")
        sys.exit(0)
event("finished", step=3)
log("end")
"""


@pytest.fixture()
def fake_training(monkeypatch, tmp_path) -> Path:
    log = tmp_path / "trainings.log"
    monkeypatch.setenv("QUEUE_TEST_LOG", str(log))
    monkeypatch.setattr(jobs, "training_command", lambda run_dir: [sys.executable, "-c", FAKE_TRAINING, str(run_dir)])
    return log


@pytest.fixture()
def base():
    prompts = json.dumps(["a zq on a black background"])  # the preset's <trigger> needs a dataset that names one
    return resolve_config(preset="lora-pocket", overrides={"sample_prompts": prompts, "steps": "3"})


def _log(path: Path) -> list[tuple[str, str, float]]:
    return [(w, run, float(t)) for w, run, t in (line.split() for line in path.read_text().splitlines())]


def _run_until(runner: QueueRunner, done, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not done():
        assert time.time() < deadline, "the queue did not get there in time"
        runner.tick()
        time.sleep(0.05)


def test_split_and_parse_sweeps():
    assert split_values("1e-4, 3e-4") == ["1e-4", "3e-4"]
    assert split_values("[to_q,to_k],[conv1]") == ["[to_q,to_k]", "[conv1]"]
    assert split_values("'a, b',c") == ["'a, b'", "c"]
    assert parse_sweeps(["rank=4,8", "lora.alpha=4"]) == {"rank": ["4", "8"], "lora.alpha": ["4"]}
    for bad, message in (("rank", "key=value1"), ("rank=4,,8", "empty value"), ("rank=4,4", "listed twice")):
        with pytest.raises(ValueError, match=message):
            parse_sweeps([bad])
    with pytest.raises(ValueError, match="given twice"):
        parse_sweeps(["rank=4", "rank=8"])


def test_a_sweep_is_the_cartesian_product_per_dataset_under_one_sweep_id(tmp_path, base, shapes_folder):
    other = tmp_path / "other"
    other.mkdir()
    for image in sorted(shapes_folder.glob("shape[01].*")):
        (other / image.name).write_bytes(image.read_bytes())
    store = QueueStore(tmp_path / "data")
    sweeps = parse_sweeps(["learning_rate=1e-4,3e-4", "rank=4,8"])
    added = add_entries(store, base, [shapes_folder, other], sweeps, evaluate=False)
    assert [e.id for e in added] == list(range(1, 9)) and {e.sweep for e in added} == {"sweep-1"}
    assert [(Path(e.dataset).name, e.swept) for e in added[:4]] == [
        (shapes_folder.name, {"learning_rate": "1e-4", "rank": "4"}),
        (shapes_folder.name, {"learning_rate": "1e-4", "rank": "8"}),
        (shapes_folder.name, {"learning_rate": "3e-4", "rank": "4"}),
        (shapes_folder.name, {"learning_rate": "3e-4", "rank": "8"}),
    ]
    assert [Path(e.dataset) for e in added[4:]] == [other.resolve()] * 4
    # the swept values are in each resolved config; the rest is the base config
    assert [(e.config["training"]["learning_rate"], e.config["lora"]["rank"]) for e in added[:4]] == [
        (1e-4, 4),
        (1e-4, 8),
        (3e-4, 4),
        (3e-4, 8),
    ]
    assert all(e.config["training"]["steps"] == 3 and e.config["lora"]["alpha"] == 16 for e in added)
    assert add_entries(store, base, [shapes_folder], {})[0].sweep == "sweep-2"  # a single add is a sweep of one


def test_the_queue_survives_a_fresh_store_object(tmp_path, base, shapes_folder):
    data = tmp_path / "data"
    added = add_entries(QueueStore(data), base, [shapes_folder], parse_sweeps(["rank=2,4"]), evaluate=False)
    QueueStore(data).change(added[0].id, status="failed", reason="out of memory")
    reopened = QueueStore(data).load()  # a new process (an app restart) reads the same queue
    assert [(e.id, e.status, e.reason, e.swept) for e in reopened.entries] == [
        (1, "failed", "out of memory", {"rank": "2"}),
        (2, "queued", None, {"rank": "4"}),
    ]
    assert reopened.entries[1].config == added[1].config and not reopened.processing
    assert add_entries(QueueStore(data), base, [shapes_folder], {})[0].id == 3  # ids are never reused
    assert not list(data.glob(".*.tmp"))  # written by rename: no temp file left behind


def test_bad_input_is_refused_before_anything_is_queued(tmp_path, base, shapes_folder, capsys, monkeypatch):
    store = QueueStore(tmp_path / "data")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        ([shapes_folder], {"rnk": ["2", "4"]}, "unknown setting 'rnk'"),
        ([shapes_folder], {"rank": ["4", "x"]}, "rank must be int"),
        ([shapes_folder], {"learning_rate": ["-1"]}, "learning_rate must be a positive number"),
        ([shapes_folder, tmp_path / "missing"], {"rank": ["4"]}, "no dataset"),
        ([empty], {}, "has no images"),
    ]
    for datasets, sweeps, message in cases:
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            add_entries(store, base, datasets, sweeps)
    with pytest.raises(ValueError, match="1 or more seeds"):
        add_entries(store, base, [shapes_folder], {}, eval_seeds=0)
    assert not store.path.exists()
    # the command line says it in one line, and a key in both --set and --sweep is refused too
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    common = ["queue", "add", "--preset", "lora-pocket", "--dataset", str(shapes_folder)]
    assert main([*common, "--sweep", "rnk=2,4"]) == 2
    assert main([*common, "--set", "rank=2", "--sweep", "rank=2,4"]) == 2
    assert main(["queue", "add", "--preset", "lora-pocket", "--folders", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "--sweep rnk: unknown setting 'rnk'" in err and "in both --set and --sweep" in err
    assert "has no sub-folders" in err and "Traceback" not in err
    assert not store.path.exists()


def test_entries_train_one_at_a_time_in_order(tmp_path, base, shapes_folder, fake_training):
    data = tmp_path / "data"
    store = QueueStore(data)
    added = add_entries(store, base, [shapes_folder], parse_sweeps(["rank=2,4,8"]), evaluate=False)
    request_processing(store, True)
    seen = []
    last = QueueRunner(data).run(seen.append, poll_seconds=0.05)
    assert last.state == "empty" and not store.load().processing
    entries = store.load().entries
    assert [e.status for e in entries] == ["finished"] * 3
    log = _log(fake_training)
    assert [(word, run) for word, run, _ in log] == [
        (word, entry.run_id) for entry in entries for word in ("start", "end")
    ]  # in the order added, each ending before the next starts
    assert all(log[i][2] <= log[i + 1][2] for i in range(len(log) - 1))
    assert all(runs.replay(data / "runs" / e.run_id).status == "finished" for e in entries)
    rows = queue_rows(store.load(), data / "runs")
    assert [row[2] for row in rows] == ["finished"] * 3 and rows[0][6:8] == ["3/3", "0.3333"]
    # a run reads by its name, as in every list, with the id beside it
    from studio.runs.names import run_label

    first = data / "runs" / store.load().entries[0].run_id
    assert rows[0][5] == f"{run_label(first)} ({first.name})" and " · " in rows[0][5]
    assert {p.entry.id for p in seen if p.entry} == {e.id for e in added}


def test_stopping_requeues_the_running_entry_and_the_next_run_resumes_it(tmp_path, base, shapes_folder, monkeypatch,
                                                                         fake_training):  # fmt: skip
    monkeypatch.setenv("QUEUE_TEST_STEP", "0.5")
    data = tmp_path / "data"
    store = QueueStore(data)
    first, second = add_entries(store, base, [shapes_folder], parse_sweeps(["rank=2,4"]), evaluate=False)
    request_processing(store, True)
    runner = QueueRunner(data)
    run_dir = lambda: data / "runs" / str(store.load().entry(first.id).run_id)  # noqa: E731
    _run_until(runner, lambda: store.load().entry(first.id).run_id and runs.replay(run_dir()).last_step >= 1)
    request_processing(store, False)  # Ctrl-C in `studio queue run`, Stop in the app, `studio queue stop`
    last = runner.run(poll_seconds=0.05)
    assert last.state == "stopped"
    entry = store.load().entry(first.id)
    assert entry.status == "queued" and "resumes from its last checkpoint" in entry.reason
    assert runs.replay(run_dir()).status == "cancelled" and store.load().entry(second.id).status == "queued"
    # the next run resumes the same run folder, then goes on with the second entry
    request_processing(store, True)
    QueueRunner(data).run(poll_seconds=0.05)
    entries = store.load().entries
    assert entries[0].run_id == entry.run_id and [e.status for e in entries] == ["finished", "finished"]
    words = [(word, run) for word, run, _ in _log(fake_training)]
    assert words[:4] == [("start", entry.run_id), ("cancelled", entry.run_id), ("resume", entry.run_id),
                         ("end", entry.run_id)]  # fmt: skip


def test_after_a_restart_a_died_entry_is_resumed_and_a_cancelled_one_can_be_retried(
    tmp_path, base, shapes_folder, fake_training
):
    data = tmp_path / "data"
    store = QueueStore(data)
    died, never_started, cancelled, ctrl_c = add_entries(
        store, base, [shapes_folder], parse_sweeps(["rank=2,4,8,16"]), evaluate=False
    )
    # the app was killed: entry 1 trained to step 1 and its process is gone; entry 2 was marked but never written
    from studio.train.start import create_run

    config = resolve_config(preset="lora-pocket", overrides={"steps": "3", "sample_prompts": '["a zq"]'})
    folder = create_run(config, shapes_folder, run_id="r-died", root=data / "runs")
    runs.append_event(folder, "started", step=0, total_steps=3, pid=2**22 + 12345)  # no such process
    runs.append_event(folder, "step", step=1, loss=0.5, lr=1e-3, seconds=0.1)
    store.change(died.id, status="running", run_id="r-died", pid=2**22 + 12345)
    store.change(never_started.id, status="running", run_id="r-never")  # cannot both run: the runner mends it
    cancelled_dir = create_run(config, shapes_folder, run_id="r-cancelled", root=data / "runs")
    runs.append_event(cancelled_dir, "cancelled", step=0, reason="cancelled from the Train tab")
    store.change(cancelled.id, status="cancelled", run_id="r-cancelled", reason="cancelled from the Train tab")
    # the app was stopped with Ctrl-C in its terminal, which reached its training process too
    keyboard_dir = create_run(config, shapes_folder, run_id="r-ctrl-c", root=data / "runs")
    runs.append_event(keyboard_dir, "started", step=0, total_steps=3, pid=2**22 + 12346)
    runs.append_event(keyboard_dir, "cancelled", step=0, reason=runs.KEYBOARD_INTERRUPT)
    store.change(ctrl_c.id, status="running", run_id="r-ctrl-c", pid=2**22 + 12346)
    with store.update() as state:
        state.processing = True  # it was processing when it went down
    assert runs.replay(folder).status == "interrupted"

    QueueRunner(data).run(poll_seconds=0.05)
    entries = {e.id: e for e in store.load().entries}
    assert entries[died.id].status == "finished" and entries[died.id].resumes == 1
    assert entries[never_started.id].status == "finished" and entries[never_started.id].run_id == "r-never"
    assert entries[cancelled.id].status == "cancelled"  # cancelled on purpose (the Train tab): left alone
    assert entries[ctrl_c.id].status == "finished" and entries[ctrl_c.id].resumes == 1
    assert ("resume", "r-died") in [(w, r) for w, r, _ in _log(fake_training)]

    with pytest.raises(ValueError, match="only a failed or cancelled entry"):
        retry_entry(store, died.id)
    assert "queued again" in retry_entry(store, cancelled.id)
    request_processing(store, True)
    QueueRunner(data).run(poll_seconds=0.05)
    assert store.load().entry(cancelled.id).status == "finished"
    assert ("resume", "r-cancelled") in [(w, r) for w, r, _ in _log(fake_training)]


def test_one_runner_per_queue_and_remove(tmp_path, base, shapes_folder):
    data = tmp_path / "data"
    store = QueueStore(data)
    added = add_entries(store, base, [shapes_folder], parse_sweeps(["rank=2,4"]), evaluate=False)
    lock = RunnerLock(data)
    lock.acquire()
    try:
        with pytest.raises(RunnerBusy, match="already being processed"):
            RunnerLock(data).acquire()
    finally:
        lock.release()
    RunnerLock(data).acquire()  # released: the next one gets it
    RunnerLock(data).release()
    assert remove_entry(store, added[0].id) == "removed entry 1"
    assert [e.id for e in store.load().entries] == [2]
    with pytest.raises(ValueError, match="no entry 1"):
        remove_entry(store, 1)
    remove_entry(store, 2)
    with pytest.raises(ValueError, match="nothing to train"):
        request_processing(store, True)


def test_the_sweep_table_puts_scorecards_side_by_side(tmp_path, base, shapes_folder):
    data = tmp_path / "data"
    store = QueueStore(data)
    added = add_entries(store, base, [shapes_folder], parse_sweeps(["rank=2,4"]), evaluate=True)
    assert all(e.evaluate for e in added)  # on by default for the pocket model
    config = resolve_config(preset="lora-pocket", overrides={"steps": "3", "sample_prompts": '["a zq"]'})
    from studio.train.start import create_run

    for entry, value in zip(added, (0.5, 0.9)):
        folder = create_run(config, shapes_folder, run_id=f"r{entry.id}", root=data / "runs")
        runs.append_event(folder, "step", step=3, loss=value / 10, lr=1e-3, seconds=0.1)
        scores = {"subject_fidelity": value, "prompt_fidelity": 0.25, "prior_preservation": 1.0, "held_out": 0.5}
        card = {
            "best": {"step": 2},
            "checkpoints": [
                {"step": 0, **scores, "memorisation": None},
                {"step": 2, **scores, "memorisation": 0.0},
                {"step": 3, **scores, "subject_fidelity": 0.1, "memorisation": 0.0},
            ],
        }
        (folder / "eval").mkdir()
        (folder / "eval" / "scorecard.json").write_text(json.dumps(card))
        store.change(entry.id, status="finished", run_id=folder.name)
    headers, rows = sweep_table(store.load().sweep("sweep-1"), data / "runs")
    assert headers[:4] == ["#", "rank", "status", "final loss"] and headers[-1] == "best step"
    assert rows == [
        ["1", "2", "finished", "0.0500", "0.50", "0.25", "1.00", "0.50", "0.00", "2"],
        ["2", "4", "finished", "0.0900", "0.90", "0.25", "1.00", "0.50", "0.00", "2"],
    ]
    assert format_sweep("sweep-1", store.load().sweep("sweep-1"), data / "runs").startswith("sweep-1: 2 entries")
    with pytest.raises(ValueError, match="no sweep 'sweep-9'"):
        store.load().sweep("sweep-9")


def test_ctrl_c_in_queue_run_asks_for_a_stop_and_waits_for_it(tmp_path, base, shapes_folder, monkeypatch, capsys):
    from studio.queue import Progress

    data = tmp_path / "data"
    monkeypatch.setenv("STUDIO_DATA_DIR", str(data))
    add_entries(QueueStore(data), base, [shapes_folder], {}, evaluate=False)
    seen = []

    def run(self, on_progress, poll_seconds=1.0):
        seen.append((self.store.load().processing, RunnerLock(data).holder() is not None))
        if len(seen) == 1:
            raise KeyboardInterrupt  # Ctrl-C while the first entry trains
        return Progress("stopped")  # the second call follows the entry until it has stopped

    monkeypatch.setattr(QueueRunner, "run", run)
    assert main(["queue", "run", "--no-progress"]) == 130
    assert seen == [(True, True), (False, True)]  # processing off, then waited for, still holding the queue
    assert (
        RunnerLock(data).holder() is None
        and "stopping: the running entry saves a checkpoint" in capsys.readouterr().out
    )


def test_a_folder_batch_queues_one_entry_per_sub_folder(tmp_path, shapes_folder, monkeypatch, capsys):
    styles = tmp_path / "styles"
    for name, pattern in (("b-style", "shape[01].*"), ("a-style", "shape[23].*")):
        (styles / name).mkdir(parents=True)
        for image in shapes_folder.glob(pattern):
            (styles / name / image.name).write_bytes(image.read_bytes())
    (styles / ".hidden").mkdir()
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    prompts = 'sample_prompts=["a zq on a black background"]'
    assert main(["queue", "add", "--preset", "lora-pocket", "--folders", str(styles), "--set", prompts]) == 0
    entries = QueueStore(tmp_path / "data").load().entries
    assert [Path(e.dataset).name for e in entries] == ["a-style", "b-style"] and {e.sweep for e in entries} == {
        "sweep-1"
    }
    assert "queued 2 entries as sweep-1" in capsys.readouterr().out
    assert main(["queue", "list"]) == 0 and "a-style" in capsys.readouterr().out


# The fake training above, except that on its first launch it dies after step 1 without a final event (as a process
# killed by the OOM killer does) or, for a run whose folder name says "nan", reports a failure itself.
DYING_TRAINING = FAKE_TRAINING.replace(
    "for step in range(1, 4):",
    """if "nan" in os.path.basename(run):
    event("failed", step=0, reason="loss is NaN at step 1; lower the learning rate")
    sys.exit(1)
if not resumed:
    event("step", step=1, loss=1.0, lr=1e-3, seconds=0.1)
    log("died")
    os._exit(9)
for step in range(1, 4):""",
)


def test_an_entry_whose_process_dies_while_the_queue_runs_is_resumed_but_a_reported_failure_is_final(
    tmp_path, base, shapes_folder, fake_training, monkeypatch
):
    monkeypatch.setattr(jobs, "training_command", lambda run_dir: [sys.executable, "-c", DYING_TRAINING, str(run_dir)])
    data = tmp_path / "data"
    store = QueueStore(data)
    dies, fails = add_entries(store, base, [shapes_folder], parse_sweeps(["rank=2,4"]), evaluate=False)
    store.change(fails.id, run_id="run-nan")
    request_processing(store, True)
    QueueRunner(data).run(poll_seconds=0.05)
    entries = {e.id: e for e in store.load().entries}
    assert entries[dies.id].status == "finished" and entries[dies.id].resumes == 1
    assert [word for word, run, _ in _log(fake_training) if run == entries[dies.id].run_id] == [
        "start", "died", "resume", "end"
    ]  # fmt: skip
    assert entries[fails.id].status == "failed" and "NaN" in entries[fails.id].reason
    assert entries[fails.id].resumes == 0
