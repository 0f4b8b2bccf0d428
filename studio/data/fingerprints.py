"""Fingerprints of an image's pixels: an exact hash and a perceptual hash.

The exact hash is over decoded pixels, not file bytes, so the same picture saved as PNG and as a
re-encoded copy with different metadata still counts as the same. The perceptual hash (pHash: signs of
the low-frequency DCT of a 32 x 32 grey thumbnail) changes little under resizing, re-compression and small
edits, so near-duplicates are pairs whose hashes differ in a few of their 64 bits.
"""

from __future__ import annotations

import hashlib
from functools import cache

import numpy as np
from PIL import Image

_THUMB = 32
_KEEP = 8  # the 8 x 8 lowest frequencies: the picture's coarse layout
# a distance of 6 or less out of 64 bits is "the same picture, a little changed"; unrelated images sit near 32
NEAR_DUPLICATE_DISTANCE = 6


def pixel_sha256(image: Image.Image) -> str:
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


@cache
def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II basis; `M @ x @ M.T` is the 2-D DCT of x."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    matrix[0] /= np.sqrt(2)
    return matrix


def perceptual_hash(image: Image.Image) -> int:
    """A 64-bit pHash as an int."""
    grey = np.asarray(image.convert("L").resize((_THUMB, _THUMB), Image.Resampling.BOX), dtype=np.float64)
    dct = _dct_matrix(_THUMB)
    low = (dct @ grey @ dct.T)[:_KEEP, :_KEEP].flatten()
    # the DC term is the mean brightness: it says nothing about layout and would dominate the median
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def nearest(hash_value: int, known: dict[str, int]) -> tuple[str, int] | None:
    """The known name whose hash is closest to `hash_value`, with the distance; None when nothing is known."""
    if not known:
        return None
    names = list(known)
    values = np.array([known[name] for name in names], dtype=np.uint64)
    # popcount of each 64-bit XOR, via its 8 bytes (np.bitwise_count needs numpy 2)
    distances = np.unpackbits((values ^ np.uint64(hash_value)).view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
    best = int(np.argmin(distances))
    return names[best], int(distances[best])


def same_colours(a: Image.Image, b: Image.Image, tolerance: float = 24.0) -> bool:
    """Whether two images have about the same colours, place by place (8 x 8 thumbnails, mean difference per
    channel under `tolerance` of 255). pHash sees grey only: a shape on white and the same shape on grey hash
    alike but are different pictures to train on."""
    small = [np.asarray(i.convert("RGB").resize((8, 8), Image.Resampling.BOX), dtype=np.float32) for i in (a, b)]
    return float(np.abs(small[0] - small[1]).mean()) < tolerance
