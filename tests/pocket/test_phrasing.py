"""The pocket model's training captions: varied the way people write, always true of the image, reproducible."""

from __future__ import annotations

import re

import numpy as np
import pytest

from studio.pocket.phrasing import PARAPHRASES, describe, made_up_word
from studio.pocket.world import BASE_BACKGROUNDS, BASE_COLORS, BASE_SHAPES, PALETTE


def _captions(seed: int, n: int = 2000):
    rng = np.random.default_rng(seed)
    picks = np.random.default_rng(seed + 1)
    out = []
    for _ in range(n):
        shape = str(picks.choice(BASE_SHAPES))
        background = str(picks.choice(BASE_BACKGROUNDS))
        color = str(picks.choice([c for c in BASE_COLORS if c != background]))
        size = float(picks.uniform(0.38, 0.72))
        out.append(((shape, color, background, size), describe(shape, color, background, size, rng)))
    return out


def test_the_same_generator_seed_gives_the_same_captions() -> None:
    assert _captions(3, 50) == _captions(3, 50)


def test_every_caption_is_true_of_its_image() -> None:
    for (shape, color, background, size), caption in _captions(0):
        words = re.findall(r"[a-z]+", caption.lower())
        named_colours = [w for w in words if w in PALETTE or w == "grey"]
        # a colour word is either the shape's or the background's (grey = gray); no other colour is ever named
        allowed = {color, background} | ({"grey"} if background == "gray" else set())
        assert set(named_colours) <= allowed, caption
        others = set(BASE_SHAPES) - {shape}
        assert not others & set(words), caption
        if size < 0.6:
            assert not {"big", "large"} & set(words), caption
        if size > 0.48:
            assert not {"small", "little", "tiny"} & set(words), caption


def test_captions_vary_the_way_people_write_and_keep_the_canonical_form_common() -> None:
    captions = [c for _, c in _captions(1)]
    canonical = sum(bool(re.fullmatch(r"an? \w+ \w+ on a \w+ background", c)) for c in captions)
    assert 0.1 < canonical / len(captions) < 0.5
    assert any("grey" in c for c in captions) and any("," in c for c in captions)
    assert any(c.isupper() for c in captions)
    assert any(c.lower().startswith("on a") for c in captions)


def test_made_up_words_are_not_words_of_the_world() -> None:
    rng = np.random.default_rng(0)
    words = {made_up_word(rng) for _ in range(500)}
    assert len(words) > 400
    assert not words & (set(PALETTE) | set(BASE_SHAPES) | {"background", "grey"})


@pytest.mark.parametrize("name", list(PARAPHRASES))
def test_each_judged_paraphrase_names_the_colour_and_background(name) -> None:
    text = PARAPHRASES[name]("circle", "orange", "gray").lower()
    assert "orange" in text and ("gray" in text or "grey" in text) and "circle" in text
