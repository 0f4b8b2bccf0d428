"""Exact scores on the pocket model: the shapes-world evaluator says what each sample shows.

- subject fidelity: subject prompts whose samples show what every training image shows (its shape, and its
  colour or background when those never vary) and the colour and background the prompt names;
- prompt fidelity: context prompts whose samples show the subject's shape in the colour and background the prompt
  asks for (the whole prompt: judging the shape alone read 95 % on samples all on the wrong background), and how
  often the subject's shape survives there at all;
- prior preservation: prompts without the trigger whose samples the evaluator judges the same as the base
  model's at the same seed, and how often they still match their own prompt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from studio.evaluate.prompts import EvalPrompt
from studio.pocket.evaluator import Judgement, judge

ATTRIBUTES = ("shape", "color", "background")


def _attributes(judgement: Judgement) -> dict[str, str]:
    return {name: getattr(judgement, name) for name in ATTRIBUTES}


def training_attributes(images: tuple[Path, ...] | list[Path]) -> list[dict[str, str]]:
    out = []
    for path in images:
        with Image.open(path) as image:
            out.append(_attributes(judge(image)))
    return out


def subject_signature(trained: list[dict[str, str]]) -> dict[str, str]:
    """What every training image shows: the subject (a shape, plus a colour or background if constant)."""
    return {name: trained[0][name] for name in ATTRIBUTES if len({t[name] for t in trained}) == 1}


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def pocket_scores(
    prompts: list[EvalPrompt], images: list[Image.Image], base_images: list[Image.Image], subject: dict[str, str]
) -> dict:
    seen = [_attributes(judge(image)) for image in images]
    base = [_attributes(judge(image)) for image in base_images]
    subject_hits, shape_held, context_held, agree, prompt_hits = [], [], [], [], []
    for prompt, got, before in zip(prompts, seen, base):
        if prompt.group == "subject":
            # the subject as trained, and whatever colour and background its prompt names
            subject_hits.append(all(got[k] == v for k, v in {**subject, **prompt.expect}.items()))
        elif prompt.group == "context":
            # right only when the whole prompt holds: the subject's shape in the colour and background asked for
            # (a dataset of several shapes has no one shape to keep: then only the prompt's words count)
            shape_held.append(got["shape"] == subject["shape"] if "shape" in subject else True)
            context_held.append(shape_held[-1] and all(got[k] == v for k, v in prompt.expect.items()))
        else:
            agree.append(got == before)
            if len(prompt.expect) == len(ATTRIBUTES):
                prompt_hits.append(got == prompt.expect)
    return {
        "subject_fidelity": _mean(subject_hits),
        "prompt_fidelity": _mean(context_held),
        "subject_in_context": _mean(shape_held),
        "prior_preservation": _mean(agree),
        "prior_prompt_accuracy": _mean(prompt_hits),
        "judged": [{"group": p.group, "prompt": p.prompt, "seed": p.seed, **got} for p, got in zip(prompts, seen)],
    }
