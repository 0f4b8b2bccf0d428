"""Preparation: sizes, crops that keep the subject or the whole image, the manifest, batching by bucket."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import png_bytes
from PIL import Image

from studio.data.buckets import bucket_for, bucket_list
from studio.data.crops import center_box, smart_box
from studio.data.dataset import Dataset
from studio.data.importer import ImportOptions, import_dataset
from studio.data.prepare import PreparedDataset, PrepareSettings, bucket_batches, prepare_dataset
from studio.data.trigger import MissingTriggerError
from studio.data.validate import ImageRules
from studio.pocket import world

SIZES = [(96, 96), (160, 96), (96, 200), (300, 100), (120, 90), (90, 120), (250, 140), (64, 400)]


def _shape_at_left(size: tuple[int, int]) -> Image.Image:
    """A wide image with a red disc near its left edge on flat grey."""
    image = Image.new("RGB", size, world.PALETTE["gray"])
    height = size[1]
    disc = world.render(world.Scene("circle", "red", "gray", cx=0.5, cy=0.5, size=0.9), height)
    image.paste(disc, (4, 0))
    return image


@pytest.fixture
def varied(tmp_path: Path) -> Dataset:
    folder = tmp_path / "upload"
    folder.mkdir()
    for index, size in enumerate(SIZES):
        scene = world.Scene(world.BASE_SHAPES[index % 4], "blue", "white")
        image = world.render(scene, max(size)).resize(size, Image.Resampling.LANCZOS)
        (folder / f"img-{index}.png").write_bytes(png_bytes(image))
        (folder / f"img-{index}.txt").write_text(f"sks, {scene.caption}")
    (folder / "left.png").write_bytes(png_bytes(_shape_at_left((300, 100))))
    (folder / "left.txt").write_text("sks, a red circle on a gray background")
    options = ImportOptions(rules=ImageRules(resolution=64), trigger="sks")
    return import_dataset("varied", [folder], root=tmp_path / "datasets", options=options)[0]


def test_bucket_list_is_a_lattice_near_the_target_area():
    for resolution, step in ((64, 16), (512, 64), (1024, 64)):
        buckets = bucket_list(resolution, step)
        assert (resolution, resolution) in buckets
        for width, height in buckets:
            assert width % step == 0 and height % step == 0
            assert resolution**2 / 2 <= width * height <= resolution**2
            assert max(width, height) / min(width, height) <= 4
    assert (1216, 832) in bucket_list(1024, 64) and (832, 1216) in bucket_list(1024, 64)  # SDXL's own buckets
    with pytest.raises(ValueError, match="multiple"):
        bucket_list(100, 64)


@pytest.mark.parametrize("size", [(4032, 3024), (1920, 1080), (1000, 1000), (700, 1500), (512, 512), (333, 777)])
def test_bucket_choice_trims_less_than_one_step(size):
    for resolution, step in ((64, 16), (512, 64)):
        bucket = bucket_for(size, resolution, step)
        scale = max(bucket[0] / size[0], bucket[1] / size[1])
        trim = max(size[0] * scale - bucket[0], size[1] * scale - bucket[1])
        assert trim < step, (size, bucket, trim)


def test_buckets_keep_the_whole_image_at_its_bucket_size(varied):
    prepared = prepare_dataset(varied, PrepareSettings(resolution=64, mode="buckets"))
    assert prepared.folder.name == "buckets-64-s16"
    for item in prepared.items:
        source = varied.item(item.source_file)
        with Image.open(prepared.folder / item.file) as image:
            assert image.size == item.bucket == bucket_for((source.width, source.height), 64, 16)
        left, top, right, bottom = item.crop
        trimmed = (source.width - (right - left), source.height - (bottom - top))
        if any(w.code == "extreme-aspect" for w in source.warnings):
            assert max(trimmed) > 0  # longer than 4:1 cannot fit whole; it was warned about at import
            continue
        # only a sliver is trimmed: less than one bucket step in all, along one axis only
        assert min(trimmed) == pytest.approx(0, abs=1e-6)
        assert max(trimmed) * item.width / (right - left) < 16
    assert len(prepared.buckets()) > 2


def test_center_and_smart_crops_are_square_and_smart_keeps_the_subject(varied):
    center = prepare_dataset(varied, PrepareSettings(resolution=64, mode="center"))
    smart = prepare_dataset(varied, PrepareSettings(resolution=64, mode="smart"))
    for prepared in (center, smart):
        for item in prepared.items:
            assert Image.open(prepared.folder / item.file).size == (64, 64)

    def red_pixels(prepared: PreparedDataset) -> int:
        array = np.asarray(Image.open(prepared.folder / "left.png"), dtype=np.int16)
        return int(((array[..., 0] > 180) & (array[..., 1] < 100)).sum())

    assert red_pixels(smart) > 0.5 * 64 * 64 * 0.6  # the disc is in the frame...
    assert red_pixels(center) < 0.1 * red_pixels(smart)  # ...where the centre crop misses it


def test_smart_crop_on_a_flat_image_is_the_centre_crop():
    flat = Image.new("RGB", (300, 100), (90, 90, 90))
    assert smart_box(flat, (64, 64)) == pytest.approx(center_box(flat.size, (64, 64)), abs=2)


def test_prepared_manifest_says_exactly_what_will_be_trained_on(varied):
    prepared = prepare_dataset(varied, PrepareSettings(resolution=64, mode="buckets"))
    data = json.loads((prepared.folder / "prepared.json").read_text())
    assert data["fingerprint"] == prepared.fingerprint and len(data["items"]) == len(varied.items)
    for item in data["items"]:
        png = (prepared.folder / item["file"]).read_bytes()
        assert hashlib.sha256(png).hexdigest() == item["sha256"]
        assert item["source_sha256"] == varied.item(item["source_file"]).sha256
        assert (prepared.folder / item["file"]).with_suffix(".txt").read_text().strip() == item["caption"]
    assert PreparedDataset.load(prepared.folder).items == prepared.items
    # same input, same settings: the same fingerprint; a changed caption changes it
    assert prepare_dataset(varied, PrepareSettings(resolution=64, mode="buckets")).fingerprint == prepared.fingerprint
    varied.items[0].caption += " indeed"
    assert prepare_dataset(varied, PrepareSettings(resolution=64, mode="buckets")).fingerprint != prepared.fingerprint


def test_batches_hold_one_bucket_each_and_honour_repeats(varied):
    prepared = prepare_dataset(varied, PrepareSettings(resolution=64, mode="buckets"))
    prepared.items[0].repeats = 3
    batches = bucket_batches(prepared.items, batch_size=2, seed=1)
    assert all(len({item.bucket for item in batch}) == 1 for batch in batches)
    assert sum(len(batch) for batch in batches) == len(prepared.items) + 2
    assert bucket_batches(prepared.items, batch_size=2, seed=1) == batches  # seeded: reproducible


def test_prepare_refuses_captions_without_the_trigger_and_empty_captions(varied):
    varied.items[0].caption = "a caption without it"
    with pytest.raises(MissingTriggerError, match=varied.items[0].file):
        prepare_dataset(varied, PrepareSettings(resolution=64))
    varied.trigger = None
    varied.items[0].caption = ""
    with pytest.raises(ValueError, match="no caption"):
        prepare_dataset(varied, PrepareSettings(resolution=64))
    assert len(prepare_dataset(varied, PrepareSettings(resolution=64, allow_empty_captions=True)).items) == 9


def test_settings_are_validated():
    with pytest.raises(ValueError, match="mode"):
        PrepareSettings(mode="stretch")
    with pytest.raises(ValueError, match="multiple"):
        PrepareSettings(resolution=100, bucket_step=64)
