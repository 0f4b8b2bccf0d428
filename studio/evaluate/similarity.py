"""Pixel-level closeness of two images: mean absolute difference and SSIM, and near-copies of training images.

SSIM (Wang et al. 2004) with the usual 11-pixel Gaussian window (sigma 1.5), on luminance-and-colour channels
averaged; 1.0 for identical images. A sample is a near-copy of a training image when it is both close in pixels
and structurally the same (high SSIM): a memorised image, not merely the same subject.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

NEAR_COPY_SSIM = 0.85
NEAR_COPY_PIXELS = 0.04  # mean absolute difference, pixels in [0, 1]


def as_array(image: Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1], resized to `size` (width, height) when given."""
    rgb = image.convert("RGB")
    if size and rgb.size != size:
        rgb = rgb.resize(size, Image.Resampling.BICUBIC)
    return np.asarray(rgb, dtype=np.float32) / 255.0


def pixel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two same-sized images in [0, 1]: 0 identical, 1 black vs white."""
    return float(np.abs(a - b).mean())


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two same-sized (H, W, 3) images in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]
    y = torch.from_numpy(np.ascontiguousarray(b)).permute(2, 0, 1)[None]
    size = min(11, x.shape[-1], x.shape[-2])
    window = _gaussian_window(size)
    c1, c2 = 0.01**2, 0.03**2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=3)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    score = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(score.mean())


def nearest_training_image(sample: np.ndarray, training: list[np.ndarray]) -> dict:
    """The training image closest to `sample` in pixels: its index, pixel distance and SSIM."""
    distances = [pixel_distance(sample, t) for t in training]
    index = int(np.argmin(distances))
    return {"index": index, "pixels": distances[index], "ssim": ssim(sample, training[index])}


def is_near_copy(nearest: dict) -> bool:
    return nearest["ssim"] >= NEAR_COPY_SSIM and nearest["pixels"] <= NEAR_COPY_PIXELS
