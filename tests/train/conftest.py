"""Tiny training fixtures: a folder of shapes-world images with captions, and configs on the tiny SD1 pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

RESOLUTION = 32  # the tiny pipelines' image size


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Bit-identical comparisons need one thread count for every run in these tests, in-process or not
    (a CLI call with STUDIO_THREADS=1 would otherwise change it half-way through the session)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shapes_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 32 px shapes-world images with .txt captions (the simplest dataset a run accepts)."""
    from studio.pocket.world import Scene, render

    folder = tmp_path_factory.mktemp("shapes")
    scenes = [
        Scene("circle", "red", "white"),
        Scene("square", "blue", "green", cx=0.4),
        Scene("triangle", "yellow", "black", size=0.7),
        Scene("circle", "green", "blue", cy=0.6),
    ]
    for index, scene in enumerate(scenes):
        render(scene, RESOLUTION).save(folder / f"shape{index}.png")
        (folder / f"shape{index}.txt").write_text(scene.caption, encoding="utf-8")
    return folder


def tiny_config(sd1_dir: Path, **overrides):
    """A resolved LoRA config on the tiny SD1 pipeline; `overrides` are --set style (key -> value)."""
    from studio.train.config import resolve_config

    settings = {
        "base_model": str(sd1_dir),
        "device": "cpu",
        "resolution": RESOLUTION,
        "steps": 4,
        "rank": 4,
        "checkpoint_every": 0,
        "sample_steps": 2,
    }
    settings.update(overrides)
    return resolve_config(overrides={k: str(v) for k, v in settings.items()})


def tiny_method_config(sd1_dir: Path, method: str, settings: dict):
    """A config of `method` on the tiny SD1 pipeline; `settings` mixes training and method keys (--set style)."""
    import dataclasses

    from studio.train.config import config_from_dict
    from studio.train.methods import config_class

    own = {f.name for f in dataclasses.fields(config_class(method))}
    training = tiny_config(sd1_dir).to_dict()["training"]
    training.update({k: v for k, v in settings.items() if k not in own})
    options = {k: v for k, v in settings.items() if k in own}
    return config_from_dict({"method": method, "training": training, method: options})


# Everything the loop can randomise, on: what exact resume must reproduce.
RESUME_SETTINGS = {
    "steps": 6,
    "batch_size": 2,
    "gradient_accumulation": 2,
    "learning_rate": 1e-3,
    "lr_scheduler": "cosine",
    "warmup_steps": 2,
    "min_snr_gamma": 5.0,
    "offset_noise": 0.1,
    "caption_dropout": 0.3,
    "random_flip": True,
    "dropout": 0.1,
    "checkpoint_every": 2,
    "keep_checkpoints": 2,
}


def final_weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    from studio.runs.checkpoints import TRAINABLE, list_checkpoints

    return load_file(str(list_checkpoints(run_dir)[-1] / TRAINABLE))


@pytest.fixture(scope="session")
def uninterrupted_weights(tmp_path_factory: pytest.TempPathFactory, sd1_dir: Path, shapes_folder: Path) -> dict:
    """The final adapter weights of a RESUME_SETTINGS run that was never interrupted."""
    from studio.train.start import create_run, run_training

    run_dir = create_run(
        tiny_config(sd1_dir, **RESUME_SETTINGS), shapes_folder, root=tmp_path_factory.mktemp("runs-reference")
    )
    assert run_training(run_dir, export=False) == "finished"
    return final_weights(run_dir)


def assert_same_weights(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def resumed_and_reference_weights(config, dataset: Path, root: Path) -> tuple[dict, dict]:
    """Train `config` twice: never interrupted, and cancelled after step 3 (between the checkpoints at 2 and 4, so
    the cancel itself must save) then resumed. Returns both runs' final trained weights: (resumed, reference)."""
    from studio import runs
    from studio.train.start import create_run, resume_run, run_training

    reference = create_run(config, dataset, root=root / "reference")
    assert run_training(reference, export=False) == "finished"
    run_dir = create_run(config, dataset, root=root / "resumed")

    def cancel_at_3(event):
        if event["type"] == "step" and event["step"] == 3:
            runs.send_command(run_dir, "cancel")

    assert run_training(run_dir, on_event=cancel_at_3, export=False) == "cancelled"
    assert [c["step"] for c in runs.replay(run_dir).checkpoints] == [2, 3]
    assert resume_run(run_dir) == "finished"
    return final_weights(run_dir), final_weights(reference)
