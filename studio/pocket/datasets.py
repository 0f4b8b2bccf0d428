"""Small datasets drawn from the shapes world, to teach the pocket model something new: a concept (one shape in one
colour on many backgrounds), a style (every shape in one colour, a trigger in every caption), a colour. The example
datasets, the preset tests and the benches use them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.pocket.world import BASE_BACKGROUNDS, BASE_COLORS, BASE_SHAPES, Scene, render


def _placed(rng: np.random.Generator, shape: str, color: str, background: str, sizes: tuple[float, float]) -> Scene:
    """A scene of a random size within `sizes`, placed at random wholly inside the picture."""
    size = float(rng.uniform(*sizes))
    margin = size / 2 + 0.03
    cx, cy = (float(rng.uniform(margin, 1 - margin)) for _ in range(2))
    return Scene(shape, color, background, cx, cy, size)


def write_concept_folder(
    folder: Path, shape: str, trigger: str, count: int = 5, side: int = 64, seed: int = 0, name_colour: bool = False
) -> Path:
    """`count` images of `shape` in varied colours, places and sizes, each with a .txt caption naming the trigger.

    Captions name the background ("a zq on a black background"). `name_colour` also names the colour ("a green zq
    on ..."), the field's usual advice for a subject; on the pocket model it did worse (2026-11-23: the LoRA
    memorised the five colour/background pairs and drew pentagons for new ones), so it is off by default.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    # every image its own colour (as far as there are colours): the concept is the shape, not a colour
    colours = [str(c) for c in rng.permutation(BASE_COLORS)]
    for index in range(count):
        background = BASE_BACKGROUNDS[index % len(BASE_BACKGROUNDS)]
        color = colours[index % len(colours)]
        scene = _placed(rng, shape, color, background, sizes=(0.5, 0.7))
        render(scene, side).save(folder / f"{trigger}-{index}.png")
        subject = f"{color} {trigger}" if name_colour else trigger
        (folder / f"{trigger}-{index}.txt").write_text(f"a {subject} on a {background} background", encoding="utf-8")
    return folder


# Pink is a colour the pocket UNet never saw in a prompt; its VAE did see pink shapes, so it can draw them. (The
# first style, pink on cyan, could not be learnt: the VAE never saw cyan backgrounds and its reconstructions of the
# training images were judged right 5 times in 16, against 16 in 16 for pink on any base background; 2026-11-23.)
STYLE_COLOUR, STYLE_BACKGROUND = "pink", "black"


def write_style_folder(folder: Path, trigger: str, count: int = 96, side: int = 64, seed: int = 0) -> Path:
    """A captioned style dataset for a full fine-tune: every base shape drawn in a palette the pocket model never
    drew (pink shapes on black), captioned by content plus the style word: "a circle in zq style"."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        shape = BASE_SHAPES[index % len(BASE_SHAPES)]
        scene = _placed(rng, shape, STYLE_COLOUR, STYLE_BACKGROUND, sizes=(0.4, 0.75))
        render(scene, side).save(folder / f"style-{index:03d}.png")
        (folder / f"style-{index:03d}.txt").write_text(f"a {shape} in {trigger} style", encoding="utf-8")
    return folder


def write_color_folder(folder: Path, color: str, trigger: str, count: int = 8, side: int = 64, seed: int = 0) -> Path:
    """`count` images of the base shapes in a colour the pocket model never saw (say pink), captioned
    "a <trigger> <shape> on a <background> background": the trigger is a colour word. With an empty trigger the
    caption names no colour ("a circle on a black background"): a style LoRA that makes whatever is drawn pink,
    and stacks with a shape LoRA whose captions name no colour either."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        shape = BASE_SHAPES[index % len(BASE_SHAPES)]
        background = BASE_BACKGROUNDS[(index // len(BASE_SHAPES) + index) % len(BASE_BACKGROUNDS)]
        scene = _placed(rng, shape, color, background, sizes=(0.5, 0.7))
        stem = f"{trigger or color}-{index}"
        render(scene, side).save(folder / f"{stem}.png")
        subject = f"{trigger} {shape}" if trigger else shape
        (folder / f"{stem}.txt").write_text(f"a {subject} on a {background} background", encoding="utf-8")
    return folder
