"""A taught concept, judged on the whole prompt: does it obey the background and colour it is asked for?

The protocol of issue 17. A *new concept* is a shape the pocket model never saw (a star), six training images in
one colour (purple) on three of the four backgrounds, captioned with a trigger word ("a purple zq on a black
background"). After training, each judged prompt is drawn at 8 seeds, and a sample counts only when the evaluator
sees the right shape, colour *and* background:
- as trained: a training background and the training colour;
- new background: the fourth background, never seen with the concept;
- new colour: a base colour never seen with the concept;
- drift: base prompts without the trigger, which must stay what the base model draws.
The phrasing probe asks the *base* model (no adapter) for base prompts written as people type them (commas,
another word order, a synonym, an extra adjective, upper case) and with a made-up word put in.

Judging the shape alone read 95 % on a recipe whose samples were all on the wrong background; this is why every
figure here is the joint one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.pocket.evaluator import judge
from studio.pocket.phrasing import PARAPHRASES, article
from studio.pocket.world import Scene, base_combinations, caption_for, render


@dataclass(frozen=True)
class Concept:
    """What is taught and how it is asked for afterwards."""

    shape: str = "star"
    color: str = "purple"
    trigger: str = "zq"
    backgrounds: tuple[str, ...] = ("black", "white", "gray")
    count: int = 6
    new_background: str = "brown"
    new_color: str = "orange"

    def caption(self, color: str | None = None, background: str | None = None) -> str:
        color = color or self.color
        return f"{article(color)} {color} {self.trigger} on a {background or self.backgrounds[0]} background"


@dataclass(frozen=True)
class Probe:
    """One judged prompt: what it says and what a right sample shows."""

    name: str
    prompt: str
    shape: str
    color: str
    background: str


# Base prompts without the trigger: the model's world must stay itself with the adapter on.
DRIFT_PROMPTS = (("circle", "red", "black"), ("square", "blue", "white"), ("triangle", "yellow", "gray"))


def write_concept_images(folder: Path, concept: Concept = Concept(), side: int = 64, seed: int = 0) -> Path:
    """`concept.count` images of the concept with a caption file each, the backgrounds taken in turn."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(concept.count):
        background = concept.backgrounds[index % len(concept.backgrounds)]
        size = float(rng.uniform(0.5, 0.7))
        margin = size / 2 + 0.03
        cx, cy = (float(rng.uniform(margin, 1 - margin)) for _ in range(2))
        stem = folder / f"{concept.trigger}-{index}"
        render(Scene(concept.shape, concept.color, background, cx, cy, size), side).save(stem.with_suffix(".png"))
        stem.with_suffix(".txt").write_text(concept.caption(background=background), encoding="utf-8")
    return folder


def concept_probes(concept: Concept = Concept()) -> list[Probe]:
    trained = concept.backgrounds[0]
    probes = [
        Probe("as trained", concept.caption(), concept.shape, concept.color, trained),
        Probe(
            "new background",
            concept.caption(background=concept.new_background),
            concept.shape,
            concept.color,
            concept.new_background,
        ),
        Probe("new colour", concept.caption(color=concept.new_color), concept.shape, concept.new_color, trained),
    ]
    for shape, color, background in DRIFT_PROMPTS:
        probes.append(Probe(f"drift: {color} {shape}", caption_for(shape, color, background), shape, color, background))
    return probes


def phrasing_probes(per_style: int = 8, seed: int = 0) -> list[Probe]:
    """Each judged paraphrase applied to `per_style` base combinations (one sample each)."""
    rng = np.random.default_rng(seed)
    combos = base_combinations()
    probes = []
    for name, phrase in PARAPHRASES.items():
        for index in rng.choice(len(combos), per_style, replace=False):
            shape, color, background = combos[int(index)]
            probes.append(Probe(name, phrase(shape, color, background), shape, color, background))
    return probes


@dataclass
class Figures:
    """Hits per probe name, with every sample kept for a sheet a person can look at."""

    hits: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    samples: list[tuple[Probe, object, object]] = field(default_factory=list)  # (probe, image, judgement)

    def add(self, probe: Probe, image, judgement) -> None:
        self.hits[probe.name] = self.hits.get(probe.name, 0) + judgement.matches(
            probe.shape, probe.color, probe.background
        )
        self.totals[probe.name] = self.totals.get(probe.name, 0) + 1
        self.samples.append((probe, image, judgement))

    def rate(self, name: str) -> float:
        return self.hits[name] / self.totals[name]

    def as_dict(self) -> dict[str, str]:
        return {name: f"{self.hits[name]}/{self.totals[name]}" for name in self.totals}


def judge_probes(
    draw: Callable[[list[str], list[int]], list], probes: list[Probe], seeds: int = 8, figures: Figures | None = None
) -> Figures:
    """Draw each probe at `seeds` seeds (a probe list with repeated names draws each once, at its place) and judge.

    `draw(prompts, seeds)` returns one PIL image per prompt; `pipeline_drawer` makes one from a diffusers pipeline.
    """
    figures = figures or Figures()
    repeated = len({p.name for p in probes}) < len(probes)
    jobs = [(p, i) for i, p in enumerate(probes)] if repeated else [(p, s) for p in probes for s in range(seeds)]
    for start in range(0, len(jobs), 24):
        chunk = jobs[start : start + 24]
        images = draw([p.prompt for p, _ in chunk], [s for _, s in chunk])
        for (probe, _), image in zip(chunk, images):
            figures.add(probe, image, judge(image))
    return figures


def pipeline_drawer(pipe, steps: int = 20, guidance: float = 6.0, side: int = 64):
    """`draw` for `judge_probes` over a diffusers text-to-image pipeline: one generator per sample, so a sample
    depends on its prompt and seed only."""
    import torch

    pipe.set_progress_bar_config(disable=True)

    def draw(prompts: list[str], seeds: list[int]) -> list:
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        with torch.no_grad():
            return pipe(
                prompts,
                num_inference_steps=steps,
                guidance_scale=guidance,
                height=side,
                width=side,
                generator=generators,
            ).images

    return draw


def sheet(figures: Figures, path: Path, columns: int = 8) -> Path:
    """Every judged sample, one row per probe name, each labelled with what the evaluator saw (red: a miss)."""
    from PIL import Image, ImageDraw

    rows: dict[str, list] = {}
    for probe, image, judgement in figures.samples:
        rows.setdefault(probe.name, []).append((probe, image, judgement))
    side, label, caption_height = 96, 12, 14
    width = side * columns + 4
    sheet_image = Image.new("RGB", (width, len(rows) * (side + label + caption_height)), "white")
    draw = ImageDraw.Draw(sheet_image)
    for r, (name, row) in enumerate(rows.items()):
        top = r * (side + label + caption_height)
        draw.text((2, top), f'{name}: {figures.as_dict()[name]}   "{row[0][0].prompt}"', fill="black")
        for c, (probe, image, judgement) in enumerate(row[:columns]):
            sheet_image.paste(image.resize((side, side), Image.Resampling.NEAREST), (c * side, top + label))
            ok = judgement.matches(probe.shape, probe.color, probe.background)
            text = f"{judgement.color[:4]} {judgement.shape[:5]} /{judgement.background[:5]}"
            draw.text((c * side + 2, top + label + side), text, fill="black" if ok else "red")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet_image.save(path)
    return path
