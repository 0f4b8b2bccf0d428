"""A new concept for the pocket model: a few shapes-world images of a shape it never saw, with a trigger word.

Used by the pocket LoRA benchmark (bench/lora_pocket.py) and the slow learning test: render `count` images of
`shape` (say a star) captioned "a <trigger> on a <background> background", train, then ask for
"a <trigger> on a black background" and let the evaluator say which shape came out.
"""

from __future__ import annotations

from pathlib import Path


def _method_word(config) -> str | None:
    """The word the method itself names what it learns by (Textual Inversion's placeholder), unless a preset
    leaves it to the dataset (DreamBooth's <trigger>)."""
    from studio.train.methods import get
    from studio.train.start import TRIGGER_PLACEHOLDER

    field = get(config.method).trigger_field
    word = getattr(config.method_config, field) if field else None
    return word if word and word != TRIGGER_PLACEHOLDER else None


def train_concept(preset: str, root: Path, concept=None, overrides: dict | None = None):
    """Train a pocket preset on the issue-17 concept (`studio.pocket.concept.Concept`: six purple stars on three
    backgrounds, captioned "a purple zq on a <background> background"; folder and run under `root`) in this process;
    returns the trainer, switched to inference mode, and the concept. Samples are off."""
    from studio.pocket.concept import Concept, write_concept_images
    from studio.train.config import resolve_config
    from studio.train.loop import prepare_trainer, set_train_mode, train
    from studio.train.start import create_run, put_trigger

    config = resolve_config(preset, overrides={"sample_every": "0", **(overrides or {})})
    concept = concept or Concept()
    own_word = _method_word(config)
    if own_word:  # a method with a word of its own (TI's placeholder): the captions call the concept by it
        from dataclasses import replace

        concept = replace(concept, trigger=own_word)
    put_trigger(config, concept.trigger)
    folder = write_concept_images(root / "concept", concept, side=config.training.resolution)
    trainer = prepare_trainer(create_run(config, folder, root=root / "runs"))
    train(trainer)
    set_train_mode(trainer, False)
    return trainer, concept
