"""Advice before a run (risky settings, estimate) and the watcher's view of a run, from synthetic run folders."""

from __future__ import annotations

import json

import pytest

from studio import runs
from studio.train import advice, estimate, monitor
from studio.train.config import resolve_config


def _config(preset="lora-pocket", **overrides):
    return resolve_config(preset=preset, overrides={k: str(v) for k, v in overrides.items()})


def test_the_pocket_presets_on_five_images_with_a_trigger_raise_no_warning():
    assert advice.risky_settings(_config(), 5, "zq") == []
    assert advice.risky_settings(_config("dreambooth-lora-pocket"), 5, "zq") == []


@pytest.mark.parametrize(
    ("config", "images", "trigger", "expected"),
    [
        (_config(learning_rate=0.5), 5, "zq", "far above"),
        (_config(learning_rate=1e-8), 5, "zq", "far below"),
        (_config(), 2, "zq", "Only 2 image(s)"),
        (_config(), 5, "person", "common word"),
        (_config(), 5, None, "no trigger word"),
        (_config(steps=5000), 5, "zq", "seen about 4000 times"),
        (_config(resolution=512), 5, "zq", "works at 64 px"),
        (_config(sample_every=0), 5, "zq", "No validation samples"),
        (_config("dreambooth-pocket", with_prior_preservation="false"), 5, None, "without prior preservation"),
        (_config("ti-object-pocket", placeholder_token="<dog>"), 5, None, "'<dog>' is a common word"),
        (_config("dreambooth-lora-pocket"), 5, None, "takes DreamBooth's trigger from it"),
        (_config("dreambooth-lora-pocket"), 5, "dog", "'dog' is a common word"),  # the dataset's word, filled in
    ],
)
def test_each_anti_pattern_is_named(config, images, trigger, expected):
    warnings = advice.risky_settings(config, images, trigger)
    assert any(expected in w for w in warnings), warnings


def _run(root, run_id, config, step_seconds=(), finished=True):
    folder = runs.create_run_folder(config.to_yaml(), {"source": "/data/datasets/shapes", "items": []}, run_id, root)
    runs.append_event(folder, "started", step=0, total_steps=config.training.steps, pid=0)
    for step, seconds in enumerate(step_seconds, start=1):
        runs.append_event(folder, "step", step=step, loss=1.0 / step, lr=1e-3, seconds=seconds)
    if finished:
        runs.append_event(folder, "finished", step=len(step_seconds))
    return folder


def test_the_estimate_uses_earlier_runs_of_the_same_model_when_there_are_some(tmp_path):
    config = _config(steps=100, sample_every=0)
    before = advice.estimate(config, tmp_path)
    assert before.seconds is not None and "2-core CPU" in before.basis
    _run(tmp_path, "a", _config(), step_seconds=[0.4] * 5)  # batch 4: 0.1 s per image-step
    measured = advice.estimate(config, tmp_path)
    assert "measured" in measured.basis
    assert measured.seconds == pytest.approx(
        estimate.POCKET_LOAD_SECONDS + estimate.POCKET_EXPORT_SECONDS + 100 * 4 * 0.1
    )
    assert "GB" in measured.describe()


def test_an_sd_model_never_run_here_is_estimated_from_its_configs(monkeypatch):
    """Issue 23: no more 'unknown time'; RAM on a CPU at fp32, GPU memory apart on a GPU at fp16."""
    config = _config(base_model="runwayml/stable-diffusion-v1-5", resolution=512, sample_every=0)
    monkeypatch.setattr(estimate, "training_device", lambda config: "cpu")
    on_cpu = advice.estimate(config)
    assert on_cpu.seconds > 0 and on_cpu.gpu_gb is None and on_cpu.ram_gb > 5  # 1.07 B weights in float32 alone
    monkeypatch.setattr(estimate, "training_device", lambda config: "cuda")
    on_gpu = advice.estimate(resolve_config("lora-sd15", None, {"base_model": "runwayml/stable-diffusion-v1-5"}))
    assert on_gpu.gpu_gb < on_cpu.ram_gb and on_gpu.ram_gb is not None
    assert "unknown" not in on_gpu.describe() and "GPU memory about" in on_gpu.describe()


def test_the_estimate_takes_loading_export_and_memory_from_a_measured_run(tmp_path, monkeypatch):
    monkeypatch.setattr(estimate, "training_device", lambda config: "cpu")
    config = _config(base_model="runwayml/stable-diffusion-v1-5", resolution=512, sample_every=0, steps=10)
    folder = runs.create_run_folder(config.to_yaml(), {"source": "x", "items": []}, "measured", tmp_path)
    written = (folder / runs.CONFIG).stat().st_mtime
    events = [("started", written + 100, {"step": 0, "total_steps": 2, "pid": 0})]
    events += [("step", written + 100 + 50 * s, {"step": s, "loss": 1.0, "lr": 1e-4, "seconds": 50.0}) for s in (1, 2)]
    events += [("finished", written + 100 + 50 * 2 + 30, {"step": 2, "peak_ram_gb": 12.5})]
    with (folder / runs.EVENTS).open("w", encoding="utf-8") as stream:
        for kind, when, fields in events:
            stream.write(json.dumps({"type": kind, "time": when, **fields}) + "\n")
    found = advice.estimate(config, tmp_path)
    assert "measured on 1 earlier run" in found.basis
    assert found.parts["load"] == pytest.approx(100) and found.parts["export"] == pytest.approx(30)
    assert found.parts["10 steps"] == pytest.approx(10 * 50)  # the same batch: 50 s a step
    assert found.ram_gb == 12.5


def test_smoothing_is_bias_corrected():
    assert monitor.smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    smoothed = monitor.smooth([1.0, 0.0])
    assert 0.0 < smoothed[1] < 1.0 and smoothed[0] == pytest.approx(1.0)


def test_summary_of_a_run_rebuilds_chart_samples_and_keeps_the_last_value_of_a_resumed_step(tmp_path):
    folder = _run(tmp_path, "r", _config(), step_seconds=[0.1] * 4, finished=False)
    (folder / "samples" / "step-2.png").write_bytes(b"png")
    runs.append_event(folder, "sample", step=2, path="samples/step-2.png", prompt="a zq")
    runs.append_event(folder, "sample", step=3, path="samples/gone.png", prompt="a zq")  # file missing: not shown
    runs.append_event(folder, "step", step=4, loss=9.0, lr=2e-3, seconds=0.1)  # step 4 again, after a resume
    summary = monitor.summarise(folder)
    assert [p.step for p in summary.points] == [1, 2, 3, 4]
    assert summary.points[-1].loss == 9.0 and summary.points[-1].lr == 2e-3
    assert [s["step"] for s in summary.samples] == [2]
    assert summary.method == "lora" and summary.dataset == "shapes"
    config = _config()  # the settings shown are the run's own, from its config.yaml
    assert summary.settings["rank"] == config.method_config.rank and summary.settings["steps"] == config.training.steps
    assert summary.status == "interrupted"  # pid 0 is no live process: the run died without a word
    assert summary.eta_seconds is None


def test_a_running_run_has_a_speed_and_an_eta(tmp_path, monkeypatch):
    folder = _run(tmp_path, "live", _config(steps=100), finished=False)
    for step in range(1, 11):
        event = runs.append_event(folder, "step", step=step, loss=1.0, lr=1e-3, seconds=0.5)
    events = runs.read_events(folder)
    for index, event in enumerate(e for e in events if e["type"] == "step"):
        event["time"] = 1000.0 + index * 0.5  # two steps a second
    from studio.runs import folder as run_folder  # where replay reads them

    monkeypatch.setattr(runs, "read_events", lambda _folder: events)
    monkeypatch.setattr(run_folder, "read_events", lambda _folder: events)
    monkeypatch.setattr(run_folder, "_alive", lambda pid: True)
    summary = monitor.summarise(folder)
    assert summary.status == "running"
    assert summary.steps_per_second == pytest.approx(2.0)
    assert summary.eta_seconds == pytest.approx(45.0)
    assert monitor.format_duration(summary.eta_seconds) == "45 s"
    assert monitor.format_duration(3725) == "1 h 02 min"
