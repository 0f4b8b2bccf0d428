"""A pocket sample counts only when the whole prompt holds: shape, colour and background (issue 17).

Judging the shape alone read 95 % on a LoRA whose samples were all on the wrong background; these tests feed the
scorecard and the concept bench ground-truth images of the shapes world, so each verdict is known exactly.
"""

from __future__ import annotations

from studio.evaluate.pocket_metrics import pocket_scores
from studio.evaluate.prompts import EvalPrompt, named_attributes
from studio.pocket.concept import Concept, Probe, concept_probes, judge_probes, write_concept_images
from studio.pocket.world import Scene, render


def _image(shape: str, color: str, background: str):
    return render(Scene(shape, color, background), 64)


def test_a_context_sample_on_the_wrong_background_or_without_the_shape_is_a_miss() -> None:
    subject = {"shape": "star", "color": "purple"}
    prompts = [
        EvalPrompt("context", "an orange zq on a white background", 0, "", {"color": "orange", "background": "white"}),
        EvalPrompt("context", "an orange zq on a white background", 1, "", {"color": "orange", "background": "white"}),
        EvalPrompt("context", "an orange zq on a white background", 2, "", {"color": "orange", "background": "white"}),
    ]
    images = [
        _image("star", "orange", "white"),  # right
        _image("star", "orange", "brown"),  # the shape, on the wrong background (the old bench counted it)
        _image("circle", "orange", "white"),  # colour and background, but not the taught shape
    ]
    scores = pocket_scores(prompts, images, images, subject)
    assert scores["prompt_fidelity"] == 1 / 3
    assert scores["subject_in_context"] == 2 / 3


def test_a_subject_of_several_shapes_is_judged_on_the_colour_and_background_asked_for() -> None:
    prompts = [
        EvalPrompt("context", "an orange zq on a white background", 0, "", {"color": "orange", "background": "white"})
    ]
    images = [_image("circle", "orange", "white")]
    assert pocket_scores(prompts, images, images, {"color": "red"})["prompt_fidelity"] == 1.0


def test_a_subject_sample_must_show_the_background_its_prompt_names() -> None:
    subject = {"shape": "star", "color": "purple"}
    prompt = "a purple zq on a black background"
    prompts = [EvalPrompt("subject", prompt, seed, "", named_attributes(prompt)) for seed in range(2)]
    images = [_image("star", "purple", "black"), _image("star", "purple", "brown")]
    assert pocket_scores(prompts, images, images, subject)["subject_fidelity"] == 0.5


def test_named_attributes_reads_the_colour_and_background_a_prompt_asks_for() -> None:
    assert named_attributes("a purple zq on a black background") == {"color": "purple", "background": "black"}
    assert named_attributes("a zq on a gray background") == {"background": "gray"}
    assert named_attributes("a photo of zq") == {}


def test_the_concept_protocol_writes_one_colour_on_three_backgrounds_with_the_trigger(tmp_path) -> None:
    concept = Concept()
    folder = write_concept_images(tmp_path / "concept", concept)
    captions = sorted(p.read_text() for p in folder.glob("*.txt"))
    assert len(captions) == 6 == len(list(folder.glob("*.png")))
    assert {c.split(" on a ")[1] for c in captions} == {f"{b} background" for b in concept.backgrounds}
    assert all(c.startswith("a purple zq ") for c in captions)
    probes = {p.name: p for p in concept_probes(concept)}
    assert probes["new background"].background == concept.new_background not in concept.backgrounds
    assert probes["new colour"].prompt == "an orange zq on a black background"


def test_judge_probes_counts_only_samples_that_match_everything() -> None:
    probes = [Probe("as trained", "a purple zq on a black background", "star", "purple", "black")]

    # a drawer that gets the background right only for even seeds
    def draw(prompts, seeds):
        return [_image("star", "purple", "black" if s % 2 == 0 else "brown") for s in seeds]

    figures = judge_probes(draw, probes, seeds=8)
    assert figures.as_dict() == {"as trained": "4/8"}
