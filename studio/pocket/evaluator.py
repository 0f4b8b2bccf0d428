"""Judge a shapes-world image: which shape, which colour, which background.

No learned model: the background is the colour of the border, the shape is
every pixel that differs from it, and the shape's kind is the outline that,
re-drawn into the shape's bounding box, overlaps it best. This works on any
image size and on generated images that are a little blurry or noisy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from studio.pocket.world import ALL_SHAPES, PALETTE, shape_mask

_SIDE = 64
_BORDER = 2  # pixels of frame used to read the background
_FG_DISTANCE = 45.0  # RGB distance from the background that counts as "shape"
_MIN_PIXELS = 16  # fewer foreground pixels than this: no shape at all
_MIN_IOU = 0.55  # a best overlap below this: the shape is not one we know
_MAX_ASPECT = 1.35  # every shape of the world is drawn in a square box


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


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 4-connected region of a boolean mask (drops stray specks)."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    best_label, best_size, current = 0, 0, 0
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
        if size > best_size:
            best_label, best_size = current, size
    return labels == best_label


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
    scores = {}
    for shape in shapes:
        template = shape_mask(shape, box, _SIDE)
        inter = np.minimum(template, observed).sum()
        union = np.maximum(template, observed).sum()
        scores[shape] = float(inter / max(union, 1e-6))
    best = max(scores, key=scores.get)
    if scores[best] < _MIN_IOU:
        return Judgement("unknown", color, background, scores[best])
    return Judgement(best, color, background, scores[best])
