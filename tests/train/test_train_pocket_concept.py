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
@pytest.mark.skipif(not (POCKET_MODEL_DIR / "model_index.json").is_file(), reason="the pocket model is not built yet")
def test_lora_pocket_preset_teaches_a_star(tmp_path) -> None:
    """Five star images, the preset as shipped; "a zq on a <background> background" must draw stars. Gray is
    left out: the pocket model smears colour on gray after a LoRA (issue 4 note); bench/lora_pocket.py reports it."""
    from studio.train.pocket_concept import shape_rate, train_concept

    trainer = train_concept("lora-pocket", tmp_path)
    rates = {
        background: shape_rate(trainer.pipe, f"a zq on a {background} background", "star", range(8), 64)
        for background in ("black", "white")
    }
    assert min(rates.values()) >= 0.75, f"too few stars: {rates}"
