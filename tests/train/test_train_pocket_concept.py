"""The pocket LoRA preset teaches a new shape (needs the built pocket model; skipped without it)."""

from __future__ import annotations

import pytest

from studio.paths import POCKET_MODEL_DIR


def test_concept_folder_renders_the_shape_with_trigger_captions(tmp_path) -> None:
    from PIL import Image

    from studio.pocket.evaluator import judge
    from studio.train.pocket_concept import write_concept_folder

    folder = write_concept_folder(tmp_path, "star", "zq", count=5)
    images = sorted(folder.glob("*.png"))
    assert len(images) == 5
    assert all(judge(Image.open(p)).shape == "star" for p in images)
    assert all(p.with_suffix(".txt").read_text().startswith("a zq on a ") for p in images)


@pytest.mark.slow
@pytest.mark.xfail(
    reason="issue 4, open: the pocket LoRA preset is not tuned yet; on 2026-11-23 it drew a star in 1-5 of 8 samples "
    "after ~55 s (goal: >= 90 % within 60 s, bench/lora_pocket.py measures it)",
    strict=False,
)
@pytest.mark.skipif(not (POCKET_MODEL_DIR / "model_index.json").is_file(), reason="the pocket model is not built yet")
def test_lora_pocket_preset_teaches_a_star(tmp_path) -> None:
    from studio.train.config import resolve_config
    from studio.train.loop import prepare_trainer, train
    from studio.train.pocket_concept import shape_rate, write_concept_folder
    from studio.train.start import create_run

    config = resolve_config(
        "lora-pocket", overrides={"sample_every": "0", "sample_prompts": "[a zq on a gray background]"}
    )
    folder = write_concept_folder(tmp_path / "concept", "star", "zq", side=config.training.resolution)
    trainer = prepare_trainer(create_run(config, folder, root=tmp_path / "runs"))
    train(trainer)
    trainer.pipe.unet.eval()
    rate = shape_rate(trainer.pipe, "a zq on a gray background", "star", range(8), config.training.resolution)
    assert rate >= 0.75, f"only {rate:.0%} of the samples show a star"
