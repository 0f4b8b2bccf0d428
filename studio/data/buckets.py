"""Aspect-ratio buckets: training sizes near a target area, so each image keeps (almost) all of itself.

The bucket list is the kohya / SDXL lattice: every width x height made of multiples of `step`, no larger than
resolution², no smaller than half of it, no more elongated than `max_aspect`. An image goes to the bucket
that shows the most of it: after scaling to cover the bucket, the trim along one axis must stay under one
step (so at most half a step comes off each side), and among those buckets the one that keeps the most
source pixels at the highest resolution wins. Every bucket side is a multiple of `step`, which must be a
multiple of what the model needs (Stable Diffusion: 64 px; the pocket model: 16 px).
"""

from __future__ import annotations

import math
from functools import cache

Bucket = tuple[int, int]  # (width, height)


def default_step(resolution: int) -> int:
    # SD's VAE (8x) and UNet (3 downsamples, 8x) need 64 px; the 64 px pocket model needs 4x4 = 16 px
    if resolution >= 256:
        return 64
    return 16 if resolution >= 64 else 8


@cache
def bucket_list(resolution: int, step: int, max_aspect: float = 4.0) -> tuple[Bucket, ...]:
    """All buckets for a target of resolution x resolution pixels, sorted by width."""
    if resolution % step:
        raise ValueError(f"resolution {resolution} is not a multiple of the bucket step {step}")
    area = resolution * resolution
    buckets = []
    for width in range(step, int(resolution * math.sqrt(max_aspect)) + step, step):
        for height in range(step, area // width + 1, step):
            if width * height >= area / 2 and max(width / height, height / width) <= max_aspect:
                buckets.append((width, height))
    return tuple(sorted(buckets))


def _fit(size: tuple[int, int], bucket: Bucket) -> tuple[float, float]:
    """(trim in bucket pixels, source pixels kept x bucket area) for an image scaled to cover `bucket`."""
    width, height = size
    scale = max(bucket[0] / width, bucket[1] / height)
    trim = max(width * scale - bucket[0], height * scale - bucket[1])
    kept_fraction = bucket[0] * bucket[1] / (width * height * scale * scale)
    return trim, kept_fraction * bucket[0] * bucket[1]


def bucket_for(size: tuple[int, int], resolution: int, step: int, max_aspect: float = 4.0) -> Bucket:
    """The bucket for an image of `size` (see the module docstring for the rule)."""
    scored = [(bucket, *_fit(size, bucket)) for bucket in bucket_list(resolution, step, max_aspect)]
    # small tolerance: a 512 x 512 image into 512 x 512 must count as no trim despite float rounding
    whole = [s for s in scored if s[1] < step - 1e-6]
    # more elongated than max_aspect: no bucket keeps it whole, so the closest shape wins (validation warned)
    # ties (two buckets keep as much) go to the smaller trim
    return max(whole or scored, key=lambda s: (s[2], -s[1]))[0]
