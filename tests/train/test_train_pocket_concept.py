"""The pocket presets teach a new concept that obeys the prompt (needs the built pocket model; skipped without it).

Every sample is judged on the whole prompt (shape, colour and background), with the protocol of
`studio.pocket.concept`: six purple stars on black, white and gray, captioned "a purple zq on a <background>
background". Floors are generous (bench/lora_pocket.py prints the measured figures, BENCHMARKS.md records them).
"""

from __future__ import annotations

import pytest

from studio.paths import POCKET_MODEL_DIR

needs_pocket = pytest.mark.skipif(
    not (POCKET_MODEL_DIR / "model_index.json").is_file(), reason="the pocket model is not built yet"
)


def test_concept_folder_renders_the_shape_with_trigger_captions(tmp_path) -> None:
    from PIL import Image

    from studio.pocket.datasets import write_concept_folder
    from studio.pocket.evaluator import judge

    folder = write_concept_folder(tmp_path, "star", "zq", count=5)
    images = sorted(folder.glob("*.png"))
    assert len(images) == 5
    assert all(judge(Image.open(p)).shape == "star" for p in images)
    assert all(p.with_suffix(".txt").read_text().startswith("a zq on a ") for p in images)


def concept_figures(trainer, concept, names: tuple[str, ...], seeds: int = 8):
    from studio.pocket.concept import concept_probes, judge_probes, pipeline_drawer

    probes = [p for p in concept_probes(concept) if p.name in names]
    return judge_probes(pipeline_drawer(trainer.pipe), probes, seeds=seeds)


@pytest.mark.slow
@needs_pocket
def test_lora_pocket_preset_teaches_a_concept_that_obeys_the_prompt(subject_run) -> None:
    """The shape under its trigger, on a training background and on the background it never saw, and a base
    prompt without the trigger left as it was. The run is the session's `subject_run` of the issue-17 concept (the
    stacked-LoRA tests' "zq"), trained once for all of them."""
    from studio.pocket.concept import Concept
    from studio.train.loop import prepare_trainer, set_train_mode

    concept = Concept()
    trainer = prepare_trainer(subject_run(concept))  # the run's final weights, from its last checkpoint
    set_train_mode(trainer, False)
    names = ("as trained", "new background", "drift: red circle")
    figures = concept_figures(trainer, concept, names)
    floors = LORA_FLOORS
    print("lora-pocket:", figures.as_dict())
    assert all(figures.hits[name] >= floors[name] for name in names), figures.as_dict()


# out of 8; measured (BENCHMARKS.md, issue 17): see bench/lora_pocket.py
LORA_FLOORS = {"as trained": 5, "new background": 4, "drift: red circle": 6}
