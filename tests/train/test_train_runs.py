"""The run folder: events replay into the same state; commands; `studio train` and `studio runs` from a shell."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from conftest import tiny_config

from studio import runs
from studio.train.start import create_run


def _folder(tmp_path):
    return runs.create_run_folder("version: 1\n", {"source": "x", "items": []}, "r1", root=tmp_path)


def test_replay_rebuilds_the_state_from_events_alone(tmp_path) -> None:
    run_dir = _folder(tmp_path)
    assert runs.replay(run_dir).status == "created"
    runs.append_event(run_dir, "started", step=0, total_steps=4, pid=os.getpid())
    for step, loss in ((1, 0.5), (2, 0.4)):
        runs.append_event(run_dir, "step", step=step, loss=loss, lr=1e-4, seconds=0.1)
    (run_dir / "checkpoints" / "step-000002").mkdir()
    runs.append_event(run_dir, "checkpoint", step=2, path="checkpoints/step-000002")
    runs.append_event(run_dir, "checkpoint", step=1, path="checkpoints/step-000001")  # pruned since: not listed
    runs.append_event(run_dir, "sample", step=2, path="samples/step-000002-0.png", prompt="p")
    runs.append_event(run_dir, "warning", message="careful")
    state = runs.replay(run_dir)
    assert (state.status, state.last_step, state.total_steps) == ("running", 2, 4)
    assert state.losses == [(1, 0.5), (2, 0.4)]
    assert [c["step"] for c in state.checkpoints] == [2] and len(state.samples) == 1 and state.warnings == ["careful"]

    # a torn last line (a process killed mid-write) is skipped, the rest still counts
    with open(run_dir / runs.EVENTS, "a") as stream:
        stream.write('{"type": "step", "st')
    assert runs.replay(run_dir).last_step == 2

    runs.append_event(run_dir, "cancelled", step=2)
    assert runs.replay(run_dir).status == "cancelled"
    # resumed: steps replayed again keep their newest loss, and the run finishes
    runs.append_event(run_dir, "started", step=2, total_steps=4, pid=os.getpid())
    runs.append_event(run_dir, "step", step=3, loss=0.3, lr=1e-4, seconds=0.1)
    runs.append_event(run_dir, "finished", step=3)
    state = runs.replay(run_dir)
    assert (state.status, state.last_step, [s for s, _ in state.losses]) == ("finished", 3, [1, 2, 3])
    assert [s.run_id for s in runs.list_runs(tmp_path)] == ["r1"]


def test_a_run_whose_process_died_is_interrupted(tmp_path) -> None:
    run_dir = _folder(tmp_path)
    runs.append_event(run_dir, "started", step=0, total_steps=4, pid=2**22 + 12345)  # no such process
    assert runs.replay(run_dir).status == "interrupted"


def test_commands_are_counters_seen_once(tmp_path) -> None:
    run_dir = _folder(tmp_path)
    watcher = runs.CommandWatcher(run_dir)
    assert watcher.poll() == set()
    runs.send_command(run_dir, "sample_now")
    runs.send_command(run_dir, "cancel")
    assert watcher.poll() == {"sample_now", "cancel"}
    assert watcher.poll() == set()
    with pytest.raises(ValueError, match="stop"):
        runs.send_command(run_dir, "stop")


def test_unknown_event_type_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="telemetry"):
        runs.append_event(_folder(tmp_path), "telemetry")


def test_run_folder_holds_config_and_dataset_manifest(tmp_path, sd1_dir, shapes_folder) -> None:
    config = tiny_config(sd1_dir)
    run_dir = create_run(config, shapes_folder, root=tmp_path)
    assert yaml.safe_load((run_dir / runs.CONFIG).read_text()) == config.to_dict()
    manifest = json.loads((run_dir / runs.DATASET).read_text())
    assert [i["file"] for i in manifest["items"]] == [f"shape{i}.png" for i in range(4)]
    assert all(len(i["sha256"]) == 64 and i["caption"] for i in manifest["items"])
    assert {p.name for p in run_dir.iterdir()} >= {"samples", "checkpoints", "outputs", "control.json"}


def test_trigger_placeholder_needs_a_dataset_trigger(tmp_path, sd1_dir, shapes_folder) -> None:
    config = tiny_config(sd1_dir, sample_prompts='["a <trigger> on a green background"]')
    with pytest.raises(ValueError, match="trigger"):
        create_run(config, shapes_folder, root=tmp_path)


def test_cli_train_then_runs_list_show_export(tmp_path, monkeypatch, capsys, sd1_dir, shapes_folder) -> None:
    from studio.cli import main

    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STUDIO_THREADS", "1")
    settings = {"base_model": sd1_dir, "device": "cpu", "resolution": 32, "steps": 2, "rank": 2, "sample_steps": 2}
    argv = ["train", "--preset", "lora-pocket", "--dataset", str(shapes_folder), "--run-id", "cli-run"]
    argv += [f"--set={k}={v}" for k, v in settings.items()] + ["--set", 'sample_prompts=["a red circle"]']
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "run cli-run" in out and "finished" in out

    assert main(["runs", "list"]) == 0
    assert "cli-run  finished    step 2/2" in capsys.readouterr().out
    assert main(["runs", "show", "cli-run", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "finished" and shown["checkpoints"] == [2] and len(shown["exports"]) == 2
    assert main(["runs", "export", "cli-run"]) == 0
    assert "lora-kohya.safetensors" in capsys.readouterr().out
    # a finished run neither resumes nor cancels; an unknown run is one clear line
    assert main(["runs", "resume", "cli-run"]) == 2
    assert main(["runs", "cancel", "cli-run"]) == 2
    assert main(["runs", "show", "nope"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err


def test_a_cancel_sent_while_the_model_loads_stops_before_the_first_step(tmp_path, sd1_dir, shapes_folder) -> None:
    from studio.runs.checkpoints import list_checkpoints
    from studio.train.loop import prepare_trainer, train

    run_dir = create_run(tiny_config(sd1_dir, steps=3), shapes_folder, root=tmp_path)
    runs.send_command(run_dir, "cancel")  # an old command, from before this process: not for it
    trainer = prepare_trainer(run_dir)
    runs.send_command(run_dir, "cancel")  # arrives after loading began, before any step
    assert train(trainer) == "cancelled"
    state = runs.replay(run_dir)
    assert state.status == "cancelled" and state.last_step == 0 and not state.losses
    assert not list_checkpoints(run_dir)
    # the first, older command did not cancel a later process: a resume trains to the end
    assert train(prepare_trainer(run_dir)) == "finished"
