"""Handlers of the Dataset, Train and Runs tabs, and the job manager, without a browser."""

from __future__ import annotations

import sys
import zipfile

import pytest

from studio import runs
from studio.data.dataset import Dataset
from studio.runs.downloads import delete_run, download_files
from studio.train import jobs
from studio.train.config import resolve_config
from studio.ui import dataset_tab, runs_tab, train_tab


@pytest.fixture()
def captioned(workspace, shape_files):
    """A dataset imported from the upload with trigger 'zq' and captioned by the pocket captioner."""
    dataset_tab.import_files(workspace, "shapes", shape_files, 64, "zq")
    dataset_tab.auto_caption(workspace, "shapes", "pocket", False)
    return workspace


def test_upload_is_imported_with_a_status_per_file_and_sanitised_names(workspace, shape_files, tmp_path):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_bytes(b"hello")
    dataset, summary = dataset_tab.import_files(workspace, "shapes", [*shape_files, str(not_an_image)], 64, "zq")
    assert summary.startswith("5 accepted, 1 rejected")
    rows = {row[0]: row for row in dataset_tab.file_rows(dataset)}
    assert all(" " not in name for name in rows if rows[name][1] != "rejected")  # "My Shape 0.png" -> safe names
    assert [row[1] for row in rows.values()].count("rejected") == 1
    assert len(dataset_tab.thumbnails(dataset)) == 5
    with pytest.raises(ValueError, match="drop some images"):
        dataset_tab.import_files(workspace, "shapes", [], 64)
    with pytest.raises(ValueError, match="dataset name"):
        dataset_tab.import_files(workspace, "../escape", shape_files, 64)


def test_pocket_captions_edits_and_trigger_are_saved(captioned):
    path = captioned.dataset_path("shapes")
    dataset = Dataset.load(path)
    rows = dataset_tab.caption_rows(dataset)
    assert rows[0][1] == "zq, a red circle on a black background"
    rows[1][1] = "zq, a blue box on a white background"
    assert dataset_tab.apply_caption_table(dataset, rows) == 1
    dataset.save()
    reopened = Dataset.load(path)
    assert reopened.captions()[rows[1][0]] == "zq, a blue box on a white background"
    assert (path / "images" / (rows[1][0].rsplit(".", 1)[0] + ".txt")).read_text().strip() == rows[1][1]
    message, choice = dataset_tab.prepare(captioned, "shapes", "center", 64)
    assert "prepared center-64" in message
    assert ("shapes (prepared center-64)", choice) in captioned.training_sources()


def test_training_sources_never_leave_the_workspace(captioned):
    assert captioned.training_source("shapes") == captioned.dataset_path("shapes")
    for bad in ("../shapes", "shapes/prepared/../../x", "/etc", "missing"):
        with pytest.raises(ValueError):
            captioned.training_source(bad)
    with pytest.raises(ValueError, match="no run"):
        captioned.run_path("../datasets")


def test_advice_counts_the_dataset_and_reads_its_trigger(captioned):
    text = train_tab.advise(captioned, resolve_config(preset="lora-pocket"), "shapes")
    assert text.startswith("**Estimate:** about") and "⚠" not in text
    text = train_tab.advise(captioned, resolve_config(preset="lora-pocket", overrides={"steps": "9000"}), "shapes")
    assert "seen about 7200 times" in text
    assert "Choose a dataset" in train_tab.advise(captioned, resolve_config(preset="lora-pocket"), None)


def _fake_training(monkeypatch, code: str) -> None:
    """The training process replaced by a short Python program (the job manager's part is what is tested)."""
    monkeypatch.setattr(jobs, "training_command", lambda run_dir: [sys.executable, "-c", code, str(run_dir)])


def test_one_job_at_a_time_and_a_process_that_dies_silently_is_marked_failed(captioned, monkeypatch):
    _fake_training(monkeypatch, "import time; time.sleep(2); raise SystemExit(3)")
    config = resolve_config(preset="lora-pocket")
    run_dir = train_tab.start_training(captioned, config, "shapes")
    assert train_tab.shown_run(captioned) == run_dir
    with pytest.raises(jobs.JobBusy, match="one training job at a time"):
        train_tab.start_training(captioned, config, "shapes")
    assert captioned.jobs.wait(run_dir, timeout=30) == 3
    state = runs.replay(run_dir)
    assert state.status == "failed" and "exited with code 3" in state.reason
    assert captioned.jobs.running() == []


def test_cancel_before_the_first_step_stops_the_process(captioned, monkeypatch):
    _fake_training(monkeypatch, "import time; time.sleep(60)")
    run_dir = train_tab.start_training(captioned, resolve_config(preset="lora-pocket"), "shapes")
    assert "before the first step" in captioned.jobs.cancel(run_dir)
    assert runs.replay(run_dir).status == "cancelled"
    with pytest.raises(ValueError, match="not running"):
        captioned.jobs.cancel(run_dir)


def test_the_training_process_gets_the_workspace_and_a_thread_share(tmp_path):
    env = jobs.training_environment(tmp_path)
    assert env["STUDIO_DATA_DIR"] == str(tmp_path) and env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert env["STUDIO_THREADS"] == env["OMP_NUM_THREADS"]
    command = jobs.training_command(tmp_path / "run x")
    assert command[:3] == [sys.executable, "-m", "studio"] and command[-2] == str(tmp_path / "run x")


def _finished_run(workspace):
    config = resolve_config(preset="lora-pocket")
    folder = runs.create_run_folder(config.to_yaml(), {"source": "shapes", "items": []}, "r1", workspace.runs_root)
    (folder / "outputs" / "lora-diffusers").mkdir()
    (folder / "outputs" / "lora-diffusers" / "pytorch_lora_weights.safetensors").write_bytes(b"weights")
    (folder / "outputs" / "lora-kohya.safetensors").write_bytes(b"kohya")
    (folder / "samples" / "s.png").write_bytes(b"png")
    runs.append_event(folder, "started", step=0, total_steps=1, pid=0)
    runs.append_event(folder, "step", step=1, loss=0.5, lr=1e-3, seconds=0.1)
    runs.append_event(folder, "sample", step=1, path="samples/s.png", prompt="a zq")
    runs.append_event(folder, "export", path="outputs/lora-diffusers")
    runs.append_event(folder, "export", path="outputs/lora-kohya.safetensors")
    runs.append_event(folder, "finished", step=1)
    return folder


def test_runs_tab_lists_runs_offers_outputs_and_deletes_after_checks(workspace):
    folder = _finished_run(workspace)
    items = runs_tab.summaries(workspace)
    # a run reads by its name (here worked out: dataset and method); its id has a column of its own
    row = runs_tab.table_rows(items)[0]
    assert row[:5] == ["shapes · LoRA", "finished", "lora", "shapes", "1/1"] and row[6] == "r1"
    assert runs_tab.run_choices(items) == [("shapes · LoRA", "r1")]
    assert runs_tab.final_samples(items) == [(str(folder / "samples" / "s.png"), "shapes · LoRA · finished")]
    assert (
        "**stars**" in runs_tab.rename(workspace, "r1", "stars")
        and runs_tab.table_rows(runs_tab.summaries(workspace))[0][0] == "stars"
    )
    files = download_files(folder)
    assert [f.name for f in files] == ["lora-diffusers.zip", "lora-kohya.safetensors"]
    with zipfile.ZipFile(files[0]) as archive:
        assert archive.namelist() == ["lora-diffusers/pytorch_lora_weights.safetensors"]
    with pytest.raises(ValueError, match="not a run"):
        delete_run(workspace.datasets_root, workspace.runs_root)
    delete_run(folder, workspace.runs_root)
    assert not folder.exists() and runs_tab.summaries(workspace) == []


def test_a_running_run_cannot_be_deleted(workspace, monkeypatch):
    folder = _finished_run(workspace)
    from studio.runs import downloads

    monkeypatch.setattr(downloads, "replay", lambda _folder: runs.RunState("r1", folder, status="running"))
    with pytest.raises(ValueError, match="still running"):
        delete_run(folder, workspace.runs_root)


def test_the_form_can_show_a_runs_own_settings(captioned, tmp_path):
    config = resolve_config(preset="lora-pocket", overrides={"steps": "40", "rank": "2"})
    from studio.train.start import create_run

    run_dir = create_run(config, captioned.training_source("shapes"), run_id="r40", root=captioned.runs_root)
    shown, choice = train_tab.run_settings(captioned, run_dir)
    assert (shown.training.steps, shown.method_config.rank, choice) == (40, 2, "shapes")
    # a run of a dataset outside the workspace (the CLI's) still shows its settings, with no dataset chosen
    outside = runs.create_run_folder(
        config.to_yaml(), {"source": str(tmp_path), "items": []}, "r2", captioned.runs_root
    )
    assert train_tab.run_settings(captioned, outside)[1] is None


def test_sample_prompts_follow_the_datasets_trigger(captioned):
    """Prompts written for another dataset's word (or a preset's <trigger>) are rewritten for this one's."""
    from studio.train.start import swap_trigger

    earlier = "a hgz on a black background\na Hgz, hgzx on white"
    assert train_tab.retarget_prompts(captioned, earlier, "shapes", {"hgz"}) == (
        "a zq on a black background\na zq, hgzx on white"  # whole words only
    )
    assert train_tab.retarget_prompts(captioned, "a zq on black", "shapes", {"hgz"}) is None  # nothing to change
    assert swap_trigger(["a <trigger> star"], {"<trigger>"}, "zq") == ["a zq star"]
    assert swap_trigger(["a zq star"], {"zq"}, None) == ["a <trigger> star"]  # the start then asks for one


def test_the_message_announces_a_runs_end_once(workspace):
    from studio.train.monitor import RunSummary

    def summary(status):
        return RunSummary("r1", workspace.runs_root / "r1", status, 40, 40, "out of memory", name="stars · LoRA")

    running = ("r1", 12, "running")
    assert train_tab.finished_notice(running, summary("finished")).startswith("✓ Training finished: **stars · LoRA**")
    assert "(failed)" in train_tab.finished_notice(running, summary("failed"))
    assert train_tab.finished_notice(("r1", 40, "finished"), summary("finished")) is None  # already shown
    assert train_tab.finished_notice(("no run",), summary("finished")) is None  # a page just opened: no news
    assert train_tab.finished_notice(("r0", 3, "running"), summary("finished")) is None  # another run


def test_the_advice_warns_about_a_gpu_preset_on_this_machine_and_upscaled_images(captioned, monkeypatch):
    from studio.data.examples import example_of
    from studio.train import hardware

    monkeypatch.setattr(hardware, "gpu_available", lambda: False)
    text = train_tab.advise(captioned, resolve_config(preset="lora-sd15"), "shapes")
    assert text.startswith("⚠ **This preset trains in fp16 mixed precision, which needs a GPU")
    assert "The smallest image is 64 px and this preset trains at 512 px" in text
    assert example_of("example-pink-style/prepared/center-64").preset == "finetune-style-pocket"
    assert example_of("shapes") is None
