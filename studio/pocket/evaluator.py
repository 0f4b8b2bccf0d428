"""Judge a shapes-world image: which shape, which colour, which background.

No learned model: the background is the colour of the border, the shape is
every pixel that differs from it, and the shape's kind is the outline that,
re-drawn into the shape's bounding box, overlaps it best. This works on any
image size and on generated images that are a little blurry or noisy.

Overlap alone confuses a blurry star with a diamond (rounded arms fill the
diamond's outline about as well as the star's), so the score also compares
the number of notches: the regions inside the convex hull that the shape
leaves empty (a star has five, a cross four, a circle none). Blur rounds
the tips of the arms but keeps the notches between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from studio.pocket.world import ALL_SHAPES, PALETTE, shape_mask

_SIDE = 64
_BORDER = 2  # pixels of frame used to read the background
_FG_DISTANCE = 45.0  # RGB distance from the background that counts as "shape"
_MIN_PIXELS = 16  # fewer foreground pixels than this: no shape at all
_MIN_IOU = 0.55  # a best overlap below this: the shape is not one we know
_MAX_ASPECT = 1.35  # every shape of the world is drawn in a square box
_NOTCH_PENALTY = 0.08  # score lost per notch more or fewer than the outline has
_MIN_NOTCH_PIXELS = 1  # a notch smaller than this (after erosion) is edge noise


@dataclass(frozen=True)
class Judgement:
    shape: str  # a name from ALL_SHAPES, or "none" / "unknown"
    color: str
    background: str
    shape_score: float  # overlap (IoU) of the best-matching outline

    def matches(self, shape: str, color: str, background: str) -> bool:
        return (self.shape, self.color, self.background) == (shape, color, background)


def _nearest_colour(rgb: np.ndarray, exclude: str | None = None) -> str:
    names = [n for n in PALETTE if n != exclude]
    refs = np.array([PALETTE[n] for n in names], dtype=np.float32)
    return names[int(np.argmin(((refs - rgb) ** 2).sum(axis=1)))]


def _components(mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """4-connected regions of a boolean mask: a label image (0 = outside) and each region's size."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    sizes: list[int] = []
    current = 0
    height, width = mask.shape
    for y, x in zip(*np.nonzero(mask)):
        if labels[y, x]:
            continue
        current += 1
        labels[y, x] = current
        stack, size = [(y, x)], 0
        while stack:
            cy, cx = stack.pop()
            size += 1
            for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = current
                    stack.append((ny, nx))
        sizes.append(size)
    return labels, sizes


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 4-connected region of a boolean mask (drops stray specks)."""
    labels, sizes = _components(mask)
    return labels == 1 + int(np.argmax(sizes))


def _convex_hull(mask: np.ndarray) -> list[tuple[float, float]]:
    """Convex hull (Andrew's monotone chain) of the pixel centres at each row's two ends."""
    points = []
    for y in np.nonzero(mask.any(axis=1))[0]:
        xs = np.nonzero(mask[y])[0]
        points += [(float(xs[0]), float(y)), (float(xs[-1]), float(y))]
    points = sorted(set(points))

    def turn(o, a, b) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for point in points:
        while len(lower) >= 2 and turn(lower[-2], lower[-1], point) <= 0:
            lower.pop()
        lower.append(point)
    for point in reversed(points):
        while len(upper) >= 2 and turn(upper[-2], upper[-1], point) <= 0:
            upper.pop()
        upper.append(point)
    return lower[:-1] + upper[:-1]


def count_notches(mask: np.ndarray) -> int:
    """Regions inside the shape's convex hull that the shape leaves empty (the gaps between a star's arms)."""
    hull = _convex_hull(mask)
    if len(hull) < 3:
        return 0
    canvas = Image.new("L", (mask.shape[1], mask.shape[0]), 0)
    ImageDraw.Draw(canvas).polygon(hull, fill=255)
    gap = (np.asarray(canvas) > 127) & ~mask
    # erode by one pixel: the thin slivers along a straight edge vanish, the notches between arms stay
    core = gap.copy()
    core[1:] &= gap[:-1]
    core[:-1] &= gap[1:]
    core[:, 1:] &= gap[:, :-1]
    core[:, :-1] &= gap[:, 1:]
    _, sizes = _components(core)
    return sum(size >= _MIN_NOTCH_PIXELS for size in sizes)


@cache
def _outline_notches(shape: str) -> int:
    return count_notches(shape_mask(shape, (8.0, 8.0, 56.0, 56.0), _SIDE) > 0.5)


def judge(image: Image.Image, shapes: tuple[str, ...] = ALL_SHAPES) -> Judgement:
    """Decide shape, colour and background of one image."""
    rgb = image.convert("RGB")
    if rgb.size != (_SIDE, _SIDE):
        rgb = rgb.resize((_SIDE, _SIDE), Image.Resampling.BOX)
    pixels = np.asarray(rgb, dtype=np.float32)

    frame = np.concatenate(
        [
            pixels[:_BORDER].reshape(-1, 3),
            pixels[-_BORDER:].reshape(-1, 3),
            pixels[:, :_BORDER].reshape(-1, 3),
            pixels[:, -_BORDER:].reshape(-1, 3),
        ]
    )
    background_rgb = np.median(frame, axis=0)
    background = _nearest_colour(background_rgb)

    distance = np.sqrt(((pixels - background_rgb) ** 2).sum(axis=2))
    foreground = distance > _FG_DISTANCE
    if foreground.sum() < _MIN_PIXELS:
        return Judgement("none", "none", background, 0.0)
    foreground = _largest_component(foreground)

    # colour from the shape's core: the pixels furthest from the background,
    # away from the blended edge
    core = foreground & (distance >= np.percentile(distance[foreground], 40))
    color = _nearest_colour(np.median(pixels[core], axis=0), exclude=background)

    ys, xs = np.nonzero(foreground)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    width, height = box[2] - box[0], box[3] - box[1]
    if max(width, height) / min(width, height) > _MAX_ASPECT:
        return Judgement("unknown", color, background, 0.0)
    observed = foreground.astype(np.float32)
    notches = count_notches(foreground)
    overlaps, scores = {}, {}
    for shape in shapes:
        template = shape_mask(shape, box, _SIDE)
        inter = np.minimum(template, observed).sum()
        union = np.maximum(template, observed).sum()
        overlaps[shape] = float(inter / max(union, 1e-6))
        scores[shape] = overlaps[shape] - _NOTCH_PENALTY * abs(notches - _outline_notches(shape))
    best = max(scores, key=scores.get)
    if overlaps[best] < _MIN_IOU:
        return Judgement("unknown", color, background, overlaps[best])
    return Judgement(best, color, background, overlaps[best])
