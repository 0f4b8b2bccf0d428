"""Where to crop: the centre, or the part of the picture with the most going on ("smart" crop).

The smart crop needs no model. A subject usually stands out from its background by edges (where brightness
changes) and by colour (it differs from the image's dominant colour); the sum of both, per pixel, is the
saliency. The crop window slides along the image's long axis and takes the offset with the most saliency,
preferring the centre among near-equal offsets so flat images crop like the centre crop.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_ANALYSIS_SIDE = 256  # saliency is computed on a copy this size: cheap, and enough to find a subject
_NEAR_BEST = 0.98  # offsets within 2 % of the best count as equally good; the most central of them wins

Box = tuple[float, float, float, float]


def crop_size(size: tuple[int, int], target: tuple[int, int]) -> tuple[float, float]:
    """Size, in source pixels, of the largest window with the target's aspect ratio."""
    width, height = size
    scale = max(target[0] / width, target[1] / height)
    return target[0] / scale, target[1] / scale


def center_box(size: tuple[int, int], target: tuple[int, int]) -> Box:
    kept_w, kept_h = crop_size(size, target)
    left, top = (size[0] - kept_w) / 2, (size[1] - kept_h) / 2
    return (left, top, left + kept_w, top + kept_h)


def saliency(image: Image.Image) -> np.ndarray:
    """Per-pixel saliency of a downscaled copy (edge strength + distance from the dominant colour), each in 0..1."""
    small = image.convert("RGB")
    small.thumbnail((_ANALYSIS_SIDE, _ANALYSIS_SIDE), Image.Resampling.BOX)
    rgb = np.asarray(small, dtype=np.float32) / 255.0
    grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    edges = np.zeros_like(grey)
    edges[:, 1:] += np.abs(np.diff(grey, axis=1))
    edges[1:, :] += np.abs(np.diff(grey, axis=0))
    distinct = np.sqrt(((rgb - np.median(rgb.reshape(-1, 3), axis=0)) ** 2).sum(axis=2))
    return edges / max(float(edges.max()), 1e-6) + distinct / max(float(distinct.max()), 1e-6)


def _best_offset(profile: np.ndarray, window: int) -> int:
    """Start of the `window`-long run of `profile` with the largest sum; the most central among near-ties."""
    slack = len(profile) - window
    if slack <= 0:
        return 0
    cumulative = np.concatenate([[0.0], np.cumsum(profile)])
    sums = cumulative[window:] - cumulative[:-window]
    near = np.nonzero(sums >= _NEAR_BEST * sums.max())[0]
    return int(near[np.argmin(np.abs(near - slack / 2))])


def smart_box(image: Image.Image, target: tuple[int, int]) -> Box:
    """The window with the target's aspect ratio that holds the most saliency."""
    kept_w, kept_h = crop_size(image.size, target)
    energy = saliency(image)
    factor = image.width / energy.shape[1]  # source pixels per analysis pixel
    if kept_w < image.width - 0.5:  # the window slides horizontally
        offset = _best_offset(energy.sum(axis=0), max(1, round(kept_w / factor))) * factor
        left = min(max(offset, 0.0), image.width - kept_w)
        return (left, 0.0, left + kept_w, float(image.height))
    if kept_h < image.height - 0.5:
        offset = _best_offset(energy.sum(axis=1), max(1, round(kept_h / factor))) * factor
        top = min(max(offset, 0.0), image.height - kept_h)
        return (0.0, top, float(image.width), top + kept_h)
    return (0.0, 0.0, float(image.width), float(image.height))
