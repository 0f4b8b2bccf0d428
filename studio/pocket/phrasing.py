"""Captions the way people write them: the pocket model's training text, and the paraphrases it is judged on.

The first pocket model saw one template ("a red circle on a black background") and nothing else. Any other word,
and a trigger word is one by definition, then corrupted the words after it (its text encoder is causal), so a
concept taught under a trigger landed on the wrong background. Pretraining now describes each image in many ways:
other word orders, commas, synonyms (grey / gray, backdrop / background), extra words (sizes that are true of the
image, common English words, a photo-of prefix) and *made-up words* standing where names, trigger words and style
words will stand. A made-up word in the noun's place stands for "some shape", as a rare token does in
DreamBooth: the model draws one of its shapes, which a fine-tune then bends into the taught one.

Everything is seeded by the caller's generator, so a pretraining step's captions are reproducible on resume.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np

from studio.pocket.world import ALL_SHAPES, PALETTE

WORD_LIST = Path(__file__).with_name("vocab") / "english_words.tsv"

# Words that mean one of the world's attributes: never used as filler or as a made-up word.
_RESERVED = set(ALL_SHAPES) | set(PALETTE) | {"grey", "background", "backdrop", "shape", "object", "thing"}
SYNONYMS = {"gray": ("gray", "grey")}
GENERIC_NOUNS = ("shape", "object", "thing", "figure")
BIG_WORDS, SMALL_WORDS = ("big", "large"), ("small", "little", "tiny")
NEUTRAL_ADJECTIVES = ("simple", "flat", "plain", "single", "solid", "bold", "nice", "clean", "cute", "lone")
PREFIXES = ("a photo of", "an image of", "a picture of", "a drawing of", "an illustration of", "a render of")
SUFFIXES = ("digital art", "high quality", "simple", "minimal", "flat colours", "vector art", "centered")

# Templates: {a_col} is the article that fits the word after it, {noun} the shape (or a stand-in), {bg} the
# background colour. Each mentions every part it is given; a part can be left out (colour or background) below.
FULL_TEMPLATES = (
    "{a} {adj}{col} {noun} on {a_bg} {bg} background",  # the first model's one template: drawn more often
    "{adj}{col} {noun}, {bg} background",
    "{col} {noun} on {bg}",
    "{a} {adj}{noun} that is {col}, on {a_bg} {bg} background",
    "on {a_bg} {bg} background, {a} {adj}{col} {noun}",
    "{a_bg} {bg} background with {a} {adj}{col} {noun}",
    "{a} {adj}{col} {noun} against {a_bg} {bg} backdrop",
    "{noun}, {col}, {bg} background",
    "{a} {adj}{col} {noun} over {bg}",
    "{a} {adj}{noun} in {col} on {a_bg} {bg} background",
    "{bg} background, {col} {noun}",
    "{a} {adj}{col} {noun} on {bg}",
    "{a} {adj}{col} {noun}. {bg} background",
)
NO_BACKGROUND_TEMPLATES = ("{a} {adj}{col} {noun}", "{col} {noun}", "{a} {adj}{noun} in {col}")
NO_COLOUR_TEMPLATES = ("{a} {adj}{noun} on {a_bg} {bg} background", "{noun}, {bg} background")

# The share of captions that get each kind of variation (the rest of a caption stays as its template says).
P_MADE_UP_NOUN = 0.08  # "a red zorb on a black background": some shape, the colour and background still hold
P_GENERIC_NOUN = 0.04
P_MADE_UP_WORD = 0.3  # a made-up word somewhere else: a name, a trigger, a style word
P_FILLER_WORD = 0.15  # a common English word somewhere
P_SIZE_WORD = 0.25  # "big" / "small", only when true of the image
P_NEUTRAL_ADJECTIVE = 0.1
P_PREFIX, P_SUFFIX = 0.12, 0.12
P_CANONICAL = 0.4
P_NO_COLOUR, P_NO_BACKGROUND = 0.04, 0.04
P_UPPER, P_CAPITALISED = 0.05, 0.1

_CONSONANTS, _VOWELS = "bcdfghjklmnpqrstvwxz", "aeiouy"


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


@cache
def filler_words(count: int = 3000) -> tuple[str, ...]:
    """Common English words (by frequency) that say nothing about a shape, colour or background."""
    words = []
    for row in WORD_LIST.read_text(encoding="utf-8").splitlines()[:count]:
        word = row.split("\t")[0]
        if word.isalpha() and len(word) > 2 and word not in _RESERVED:
            words.append(word)
    return tuple(words)


def made_up_word(rng: np.random.Generator) -> str:
    """A word nobody taught the model: random letters ("zq", "ohwx") or a pronounceable nonce ("velmora")."""
    if rng.random() < 0.5:
        length = int(rng.integers(2, 6))
        word = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), length))
    else:
        syllables = int(rng.integers(1, 4))
        word = "".join(str(rng.choice(list(_CONSONANTS))) + str(rng.choice(list(_VOWELS))) for _ in range(syllables))
        if rng.random() < 0.5:
            word += str(rng.choice(list(_CONSONANTS)))
    return word if word not in _RESERVED and word not in filler_words() else made_up_word(rng)


def describe(shape: str, color: str, background: str, size: float, rng: np.random.Generator) -> str:
    """One caption of an image of `shape` in `color` on `background` (`size`: the shape's box, a share of the side).

    Roughly a quarter of captions come out in the canonical template, unchanged; the rest are varied as the module
    docstring says, and every variation keeps the caption true of the image.
    """
    noun = shape
    roll = rng.random()
    if roll < P_MADE_UP_NOUN:
        noun = made_up_word(rng)
    elif roll < P_MADE_UP_NOUN + P_GENERIC_NOUN:
        noun = str(rng.choice(GENERIC_NOUNS))
    bg = str(rng.choice(SYNONYMS.get(background, (background,))))

    adjectives = []
    if rng.random() < P_SIZE_WORD and (size >= 0.6 or size <= 0.48):
        adjectives.append(str(rng.choice(BIG_WORDS if size >= 0.6 else SMALL_WORDS)))
    if rng.random() < P_NEUTRAL_ADJECTIVE:
        adjectives.append(str(rng.choice(NEUTRAL_ADJECTIVES)))
    rng.shuffle(adjectives)

    roll = rng.random()
    if roll < P_NO_COLOUR:
        template = str(rng.choice(NO_COLOUR_TEMPLATES))
    elif roll < P_NO_COLOUR + P_NO_BACKGROUND:
        template = str(rng.choice(NO_BACKGROUND_TEMPLATES))
    else:
        template = FULL_TEMPLATES[0] if rng.random() < P_CANONICAL else str(rng.choice(FULL_TEMPLATES))
    adj = "".join(f"{word} " for word in adjectives)
    text = _fix_articles(template.format(a="A_", adj=adj, col=color, noun=noun, a_bg="A_", bg=bg))

    if rng.random() < P_MADE_UP_WORD:
        text = _insert_word(text, made_up_word(rng), rng)
    if rng.random() < P_FILLER_WORD:
        text = _insert_word(text, str(rng.choice(filler_words())), rng)
    if rng.random() < P_PREFIX:
        text = f"{rng.choice(PREFIXES)} {text}"
    if rng.random() < P_SUFFIX:
        style = f"in {made_up_word(rng)} style" if rng.random() < 0.3 else str(rng.choice(SUFFIXES))
        text = f"{text}, {style}"
    roll = rng.random()
    if roll < P_UPPER:
        text = text.upper()
    elif roll < P_UPPER + P_CAPITALISED:
        text = text[:1].upper() + text[1:]
    return text


def _insert_word(text: str, word: str, rng: np.random.Generator) -> str:
    """`word` at a random place, never between a colour and "background" (no one writes "a grey zq background")."""
    words = text.split(" ")
    places = [i for i in range(len(words) + 1) if i == len(words) or words[i] not in ("background", "backdrop")]
    words.insert(places[int(rng.integers(len(places)))], word)
    return " ".join(words)


def _fix_articles(text: str) -> str:
    """Each article placeholder becomes "a" or "an", whichever fits the word after it."""
    return re.sub(r"A_ (\w+)", lambda m: f"{article(m.group(1))} {m.group(1)}", text)


# ------------------------------------------------------------------------------------------------ judged phrasing

# The paraphrases the phrasing figure is judged on (issue 17): each turns a canonical prompt into the way a person
# might type it. Made-up words here are fixed strings, the ones people copy from DreamBooth tutorials.
PARAPHRASES = {
    "comma style": lambda s, c, b: f"{c} {s}, {b} background",
    "word order": lambda s, c, b: f"on a {b} background, {article(c)} {c} {s}",
    "synonym": lambda s, c, b: f"{article(c)} {c} {s} on a {'grey' if b == 'gray' else b} backdrop",
    "extra adjective": lambda s, c, b: f"{article(c)} {c} big {s} on a {b} background",
    "upper case": lambda s, c, b: f"{article(c)} {c} {s} on a {b} background".upper(),
    "made-up word (sks)": lambda s, c, b: f"{article(c)} {c} sks {s} on a {b} background",
    "made-up word (ohwx)": lambda s, c, b: f"ohwx, {article(c)} {c} {s} on a {b} background",
    "made-up word (zwx)": lambda s, c, b: f"{article(c)} {c} {s} zwx on a {b} background",
}
