"""The shapes world: a deterministic, seeded source of captioned images.

The pocket model learns this world: one flat shape on a flat background,
captioned "a red circle on a black background". Only the four *base* shapes
and the base colours are used to pretrain it; every other shape the generator
can draw (star, heart, ...) is kept out of pretraining so users can teach it
later and the evaluator can measure whether they did.

Each shape is a normalised outline that fills the unit box exactly, so the
evaluator can re-draw a candidate shape into a detected bounding box and
compare. Shapes are upright; they vary in size and position only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

# Base vocabulary: what the pocket model is pretrained on.
BASE_SHAPES = ("circle", "square", "triangle", "diamond")
BASE_COLORS = ("red", "orange", "yellow", "green", "blue", "purple")
BASE_BACKGROUNDS = ("black", "white", "gray", "brown")

# Everything the generator can draw but the base model never sees.
NEW_SHAPES = ("star", "heart", "cross", "ring", "arrow")
NEW_COLORS = ("pink", "cyan")

ALL_SHAPES = BASE_SHAPES + NEW_SHAPES

# sRGB values, chosen so that every foreground/background pair is far apart.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (250, 130, 20),
    "yellow": (245, 225, 50),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "purple": (140, 60, 190),
    "pink": (250, 150, 200),
    "cyan": (40, 210, 220),
    "black": (20, 20, 20),
    "white": (240, 240, 240),
    "gray": (128, 128, 128),
    "brown": (120, 72, 40),
}

# Size of a shape's box as a fraction of the image side.
MIN_SIZE, MAX_SIZE = 0.38, 0.72
_SUPERSAMPLE = 4  # draw at 4x and downsample: smooth, alias-free edges
_RING_HOLE_INSET = 0.24


def _unit(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Stretch an outline so that it fills the unit box exactly."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    return [((x - x0) / (x1 - x0), (y - y0) / (y1 - y0)) for x, y in points]


@cache
def _outline(shape: str) -> tuple[tuple[float, float], ...]:
    """Polygon of a shape in the unit box (y grows downwards)."""
    if shape == "square":
        pts = [(0, 0), (1, 0), (1, 1), (0, 1)]
    elif shape == "triangle":
        pts = [(0.5, 0), (1, 1), (0, 1)]
    elif shape == "diamond":
        pts = [(0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5)]
    elif shape == "star":
        pts = []
        for i in range(10):
            r = 1.0 if i % 2 == 0 else 0.42
            a = -math.pi / 2 + i * math.pi / 5
            pts.append((r * math.cos(a), r * math.sin(a)))
    elif shape == "heart":
        pts = []
        for i in range(64):
            t = 2 * math.pi * i / 64
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((x, -y))
    elif shape == "cross":
        a, b = 1 / 3, 2 / 3
        pts = [(a, 0), (b, 0), (b, a), (1, a), (1, b), (b, b), (b, 1), (a, 1), (a, b), (0, b), (0, a), (a, a)]
    elif shape == "arrow":
        pts = [(0, 0.35), (0.55, 0.35), (0.55, 0), (1, 0.5), (0.55, 1), (0.55, 0.65), (0, 0.65)]
    else:
        raise ValueError(f"no outline for shape {shape!r}")
    return tuple(_unit([(float(x), float(y)) for x, y in pts]))


def _draw_polygon_or_circle(draw: ImageDraw.ImageDraw, shape: str, box: tuple[float, ...]) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=255)
    else:
        draw.polygon([(x0 + u * (x1 - x0), y0 + v * (y1 - y0)) for u, v in _outline(shape)], fill=255)


def shape_mask(shape: str, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Coverage (0..1) of `shape` drawn into `box` on a size x size canvas."""
    big = size * _SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    scaled = tuple(c * _SUPERSAMPLE for c in box)
    if shape == "ring":
        # a ring is a circle with a hole: draw the disc, then cut the hole out
        draw.ellipse(scaled, fill=255)
        x0, y0, x1, y1 = scaled
        inset = _RING_HOLE_INSET
        w, h = x1 - x0, y1 - y0
        draw.ellipse((x0 + w * inset, y0 + h * inset, x1 - w * inset, y1 - h * inset), fill=0)
    else:
        _draw_polygon_or_circle(draw, shape, scaled)
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


@dataclass(frozen=True)
class Scene:
    """One image of the shapes world. Position and size are fractions of the side."""

    shape: str
    color: str
    background: str
    cx: float = 0.5
    cy: float = 0.5
    size: float = 0.55

    def __post_init__(self) -> None:
        if self.shape not in ALL_SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; known: {', '.join(ALL_SHAPES)}")
        for name in (self.color, self.background):
            if name not in PALETTE:
                raise ValueError(f"unknown colour {name!r}; known: {', '.join(PALETTE)}")
        if self.color == self.background:
            raise ValueError("shape and background must have different colours")
        half = self.size / 2
        if not (0 < self.size <= 1 and half <= self.cx <= 1 - half and half <= self.cy <= 1 - half):
            raise ValueError(f"shape box (cx={self.cx}, cy={self.cy}, size={self.size}) leaves the image")

    @property
    def caption(self) -> str:
        return caption_for(self.shape, self.color, self.background)

    def box(self, side: int) -> tuple[float, float, float, float]:
        half = self.size * side / 2
        return (self.cx * side - half, self.cy * side - half, self.cx * side + half, self.cy * side + half)


def caption_for(shape: str, color: str, background: str) -> str:
    return f"a {color} {shape} on a {background} background"


def render(scene: Scene, side: int = 64) -> Image.Image:
    """Draw a scene as an RGB image of side x side pixels."""
    coverage = shape_mask(scene.shape, scene.box(side), side)[..., None]
    fg = np.array(PALETTE[scene.color], dtype=np.float32)
    bg = np.array(PALETTE[scene.background], dtype=np.float32)
    pixels = coverage * fg + (1 - coverage) * bg
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), "RGB")


def random_scene(
    rng: np.random.Generator,
    shapes: tuple[str, ...] = BASE_SHAPES,
    colors: tuple[str, ...] = BASE_COLORS,
    backgrounds: tuple[str, ...] = BASE_BACKGROUNDS,
) -> Scene:
    """A scene with a uniformly chosen shape, colours, size and position."""
    shape = shapes[rng.integers(len(shapes))]
    background = backgrounds[rng.integers(len(backgrounds))]
    choices = [c for c in colors if c != background]
    if not choices:
        raise ValueError(f"no shape colour differs from the background {background!r}")
    color = choices[rng.integers(len(choices))]
    size = float(rng.uniform(MIN_SIZE, MAX_SIZE))
    margin = size / 2 + 0.03
    cx = float(rng.uniform(margin, 1 - margin))
    cy = float(rng.uniform(margin, 1 - margin))
    return Scene(shape, color, background, cx, cy, size)


def scenes(n: int, seed: int, **vocabulary) -> Iterator[Scene]:
    """`n` scenes from a seeded stream: the same seed gives the same scenes."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield random_scene(rng, **vocabulary)


def base_combinations() -> list[tuple[str, str, str]]:
    """Every (shape, colour, background) the base model is expected to draw."""
    return [
        (shape, color, background)
        for shape in BASE_SHAPES
        for color in BASE_COLORS
        for background in BASE_BACKGROUNDS
        if color != background
    ]
