"""The fixed prompt set a scorecard renders: the same prompts and seeds for every checkpoint and the base model.

Three groups, after the DreamBooth paper's evaluation:
- subject: the prompts the subject was trained with (does it come back?);
- context: the subject in settings it never saw in training (does the rest of the prompt still hold?);
- prior: prompts without the trigger (does the model still draw what the base model drew?).
On the pocket model each prompt also carries what the evaluator should see, so the checks are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.evaluate.subject import Subject
from studio.pocket.world import BASE_BACKGROUNDS, BASE_COLORS, BASE_SHAPES, PALETTE, caption_for

GROUPS = ("subject", "context", "prior")

# DreamBooth paper style recontextualisation prompts for real models ({} is the subject phrase)
REAL_CONTEXTS = (
    "a {} in the jungle",
    "a {} in the snow",
    "a {} on the beach",
    "a {} on top of a wooden floor",
    "a {} with a city in the background",
    "a red {}",
)
REAL_PRIOR = ("a photo of a dog", "a landscape painting of mountains", "a bowl of fruit on a table")


@dataclass(frozen=True)
class EvalPrompt:
    group: str
    prompt: str
    seed: int
    text: str  # the prompt as CLIP-T reads it: the trigger phrase replaced by its class (or removed)
    expect: dict[str, str] = field(default_factory=dict)  # pocket only: shape / color / background asked for


@dataclass(frozen=True)
class PromptSet:
    prompts: tuple[EvalPrompt, ...]

    def group(self, name: str) -> list[EvalPrompt]:
        return [p for p in self.prompts if p.group == name]


def _plain(subject: Subject, prompt: str) -> str:
    replacement = subject.class_phrase or "thing"
    return " ".join(prompt.replace(subject.phrase, replacement).split())


def _seeded(group: str, prompts: list[tuple[str, dict]], seeds: int, subject: Subject) -> list[EvalPrompt]:
    return [EvalPrompt(group, p, seed, _plain(subject, p), expect) for p, expect in prompts for seed in range(seeds)]


def pocket_prompt_set(subject: Subject, trained: list[dict], seeds: int = 2) -> PromptSet:
    """`trained`: what the evaluator sees in each training image (shape, color, background)."""
    subject_prompts = [(p, named_attributes(p)) for p in subject.trained_prompts]
    seen = {(t["color"], t["background"]) for t in trained}
    # new colour x background pairs, spread over both lists and never one a training image shows
    pairs = [(c, b) for i, c in enumerate(BASE_COLORS) for b in BASE_BACKGROUNDS[i % 2 :: 2]]
    pairs = [(c, b) for c, b in pairs if (c, b) not in seen and c != b][::2][:6]
    contexts = [(f"a {c} {subject.phrase} on a {b} background", {"color": c, "background": b}) for c, b in pairs]
    prior = []
    if subject.class_phrase:
        prior = [(f"a {subject.class_phrase} on a {b} background", {"background": b}) for b in BASE_BACKGROUNDS[:2]]
    # the base vocabulary, one prompt per shape: what any fine-tune should leave alone
    for i, shape in enumerate(BASE_SHAPES):
        color, background = BASE_COLORS[(2 * i + 1) % len(BASE_COLORS)], BASE_BACKGROUNDS[i % len(BASE_BACKGROUNDS)]
        prior.append(
            (caption_for(shape, color, background), {"shape": shape, "color": color, "background": background})
        )
    return PromptSet(
        tuple(
            _seeded("subject", subject_prompts, 2 * seeds, subject)
            + _seeded("context", contexts, seeds, subject)
            + _seeded("prior", prior, seeds, subject)
        )
    )


def named_attributes(prompt: str) -> dict[str, str]:
    """The colour and background a shapes-world prompt asks for ("a purple zq on a black background" -> purple,
    black), so a sample of it counts only when it shows them too."""
    import re

    named = {}
    background = re.search(r"\bon an? (\w+) background", prompt.lower())
    if background and background.group(1) in BASE_BACKGROUNDS:
        named["background"] = background.group(1)
    head = prompt.lower()[: background.start()] if background else prompt.lower()
    colours = [w for w in re.findall(r"\w+", head) if w in PALETTE]
    if len(colours) == 1:
        named["color"] = colours[0]
    return named


def real_prompt_set(subject: Subject, seeds: int = 2) -> PromptSet:
    subject_prompts = [(p, {}) for p in subject.trained_prompts]
    contexts = [(t.format(subject.phrase), {}) for t in REAL_CONTEXTS]
    prior = [(f"a photo of a {subject.class_phrase}", {})] if subject.class_phrase else []
    prior += [(p, {}) for p in REAL_PRIOR]
    return PromptSet(
        tuple(
            _seeded("subject", subject_prompts, 2 * seeds, subject)
            + _seeded("context", contexts, seeds, subject)
            + _seeded("prior", prior, seeds, subject)
        )
    )
