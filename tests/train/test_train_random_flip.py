"""random_flip: half the images of each batch mirrored left-right, from a cache that holds both versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from conftest import RESOLUTION, tiny_config
from PIL import Image, ImageOps

from studio.train.conditioning import Caches
from studio.train.data import TrainingImage
from studio.train.latents import draw_flips, fill_caches, latent_distribution
from studio.train.loop import prepare_trainer


def _image(path: Path) -> TrainingImage:
    return TrainingImage(path, "x", "0", RESOLUTION, RESOLUTION)


def test_a_flipped_latent_is_the_latent_of_the_mirrored_picture(tmp_path, sd1_dir, shapes_folder) -> None:
    from studio.models import load_pipeline

    sd1_pipe = load_pipeline(str(sd1_dir), device="cpu", dtype=torch.float32).pipe
    original = sorted(shapes_folder.glob("*.png"))[1]  # an off-centre square: mirroring changes it
    mirrored = tmp_path / "mirrored.png"
    ImageOps.mirror(Image.open(original)).save(mirrored)
    caches = Caches()
    fill_caches(sd1_pipe, [_image(original)], caches, "cpu", torch.float32, mirrored=True)
    flipped, _ = latent_distribution(sd1_pipe, [_image(original)], caches, "cpu", torch.float32, [True])
    plain, _ = latent_distribution(sd1_pipe, [_image(original)], caches, "cpu", torch.float32, [False])
    expected, _ = latent_distribution(sd1_pipe, [_image(mirrored)], None, "cpu", torch.float32)
    torch.testing.assert_close(flipped, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(flipped, plain, atol=1e-3)
    # without the cache the same flip is applied to the pixels
    uncached, _ = latent_distribution(sd1_pipe, [_image(original)], None, "cpu", torch.float32, [True])
    torch.testing.assert_close(uncached, expected, rtol=0, atol=1e-6)


def test_flips_are_drawn_only_when_asked() -> None:
    generator = torch.Generator().manual_seed(0)
    before = generator.get_state()
    assert draw_flips(4, False, generator) == [False] * 4
    assert torch.equal(generator.get_state(), before)  # runs without random_flip keep their random stream
    draws = np.array([draw_flips(4, True, generator) for _ in range(50)])
    assert 0.3 < draws.mean() < 0.7


def test_a_run_with_random_flip_caches_both_versions_of_every_image(tmp_path, sd1_dir, shapes_folder) -> None:
    from studio.train.start import create_run

    run_dir = create_run(tiny_config(sd1_dir, random_flip="true"), shapes_folder, root=tmp_path)
    trainer = prepare_trainer(run_dir)
    images = len(trainer.items)
    assert sorted(flip for _, flip in trainer.caches.latents) == [False] * images + [True] * images
