"""Shared fixtures: no network, and the tiny pipelines of `tiny_pipelines` saved once as diffusers folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tiny_pipelines import build_sd, build_sdxl

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in these tests may touch the network


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """A real CLIP BPE tokenizer with a 600-token vocabulary (trained in ~1 s)."""
    from studio.pocket.tokenizer import build_tokenizer

    return build_tokenizer(tmp_path_factory.mktemp("tokenizer"), vocab_size=600)


def _saved(pipe, folder: Path) -> Path:
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def sd1_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:
    return _saved(build_sd(tiny_tokenizer, text_width=32), tmp_path_factory.mktemp("tiny-sd1"))


@pytest.fixture(scope="session")
def sd2_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:
    # SD2's shape: 1024-wide cross-attention and linear projections in the transformer blocks.
    pipe = build_sd(tiny_tokenizer, text_width=1024, text_layers=1, use_linear_projection=True)
    return _saved(pipe, tmp_path_factory.mktemp("tiny-sd2"))


@pytest.fixture(scope="session")
def sdxl_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:
    return _saved(build_sdxl(tiny_tokenizer), tmp_path_factory.mktemp("tiny-sdxl"))


SCENES = [
    ("circle", "red", "black"),
    ("square", "blue", "white"),
    ("triangle", "yellow", "gray"),
    ("diamond", "green", "brown"),
    ("circle", "purple", "white"),
]


@pytest.fixture(scope="session")
def shape_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Five 64 px shapes-world PNGs without captions, as a person would drop them."""
    from studio.pocket.world import Scene, render

    folder = tmp_path_factory.mktemp("upload")
    files = []
    for index, (shape, color, background) in enumerate(SCENES):
        path = folder / f"My Shape {index}.png"
        render(Scene(shape, color, background), 64).save(path)
        files.append(str(path))
    return files


def _shared_by_workers(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder every pytest-xdist worker of this session sees (their own temp folders are siblings)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def subject_run(tmp_path_factory: pytest.TempPathFactory):
    """`run_of(concept)`: a finished `lora-pocket` run (the preset as shipped, samples and checkpoints off) of a
    `studio.pocket.concept.Concept` on the shipped pocket model. Each concept trains once per test session, when
    first asked for (~1 minute on 2 cores), and its run is shared by every test that asks for it, on whichever
    worker (./scripts/test runs two): the first trains under a file lock, the others wait and read its run."""
    from filelock import FileLock

    from studio.paths import POCKET_MODEL_DIR

    if not (POCKET_MODEL_DIR / "model_index.json").is_file():
        pytest.skip("the pocket model is not built yet")
    root = _shared_by_workers(tmp_path_factory, "subjects")

    def run_of(concept) -> Path:
        from studio import runs
        from studio.pocket.concept import write_concept_images
        from studio.train.config import resolve_config
        from studio.train.start import create_run, put_trigger, run_training

        run_dir = root / "runs" / concept.trigger
        with FileLock(str(root / f"{concept.trigger}.lock")):
            if run_dir.is_dir() and runs.replay(run_dir).status == "finished":
                return run_dir
            shutil.rmtree(run_dir, ignore_errors=True)  # a run a killed worker left half-made
            config = resolve_config("lora-pocket", overrides={"sample_every": "0", "checkpoint_every": "0"})
            put_trigger(config, concept.trigger)
            folder = write_concept_images(root / "data" / concept.trigger, concept)
            run_dir = create_run(config, folder, run_id=concept.trigger, root=root / "runs")
            assert run_training(run_dir) == "finished"
        return run_dir

    return run_of


@pytest.fixture(scope="session")
def two_subject_runs(subject_run) -> dict[str, Path]:
    """Two finished `lora-pocket` runs (`subject_run`): six purple stars "zq" (the issue-17 concept, also judged
    alone by tests/train/test_train_pocket_concept.py) and six green hearts "vx", each on black, white and gray;
    keyed by trigger."""
    from studio.pocket.concept import Concept

    return {c.trigger: subject_run(c) for c in (Concept(), Concept(shape="heart", color="green", trigger="vx"))}
