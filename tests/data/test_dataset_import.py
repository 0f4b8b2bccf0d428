"""Importing an upload: every bad file gets its own reason, the good ones still arrive, nothing of the user's changes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REJECTED_IN_FOLDER, REJECTED_IN_ZIP, RESOLUTION, WARNED_IN_FOLDER, png_bytes, shape_images
from PIL import Image

from studio.data.archive import ZipLimits
from studio.data.caption_text import TokenCounter
from studio.data.dataset import Dataset
from studio.data.importer import ImportOptions, import_dataset
from studio.data.validate import ImageRules


def _options(tiny_tokenizer=None, **extra) -> ImportOptions:
    counter = TokenCounter(tiny_tokenizer) if tiny_tokenizer is not None else None
    return ImportOptions(rules=ImageRules(resolution=RESOLUTION), token_counter=counter, **extra)


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def imported_folder(upload_folder: Path, tmp_path: Path, tiny_tokenizer):
    before = _tree_hashes(upload_folder)
    dataset, report = import_dataset(
        "mixed", [upload_folder], root=tmp_path / "datasets", options=_options(tiny_tokenizer)
    )
    assert _tree_hashes(upload_folder) == before, "the user's files must never change"
    return dataset, report


def _by_source(report) -> tuple[dict[str, str], dict[str, set[str]]]:
    rejected = {r.source.split("/")[-1]: r.issue.code for r in report.rejected}
    warned = {item.source.split("/")[-1]: {w.code for w in item.warnings} for item in report.accepted}
    return rejected, warned


def test_every_bad_file_gets_its_specific_reason(imported_folder):
    _, report = imported_folder
    rejected, warned = _by_source(report)
    assert rejected == REJECTED_IN_FOLDER
    for name, code in WARNED_IN_FOLDER.items():
        assert code in warned[name], (name, warned[name])
    assert all(r.issue.message for r in report.rejected)


def test_good_files_import_beside_the_bad_ones(imported_folder):
    dataset, report = imported_folder
    accepted = {item.source.split("/")[-1] for item in report.accepted}
    assert {f"good-{i}.png" for i in range(5)} <= accepted
    assert {"cmyk.jpg", "palette.png", "grey-alpha.png", "grey16.png", "rotated.jpg"} <= accepted
    # 5 good + 5 conversions + 2 odd names + 8 accepted with warnings
    assert len(report.accepted) == 20 and len(report.rejected) == len(REJECTED_IN_FOLDER)
    assert report.skipped == ["upload/.DS_Store"]
    assert report.summary().startswith("20 accepted, 8 rejected")
    good = dataset.item("good-0.png")
    assert good.caption == Path(dataset.images_dir / "good-0.txt").read_text().strip()
    assert good.caption_source == "sidecar" and good.warnings == []


def test_stored_images_are_plain_rgb_upright_and_unchanged_when_possible(imported_folder, upload_folder):
    dataset, _ = imported_folder
    by_source = {item.source.split("/")[-1]: item for item in dataset.items}
    for item in dataset.items:
        with Image.open(dataset.images_dir / item.file) as stored:
            assert stored.mode == "RGB" and stored.size == (item.width, item.height)
        assert hashlib.sha256((dataset.images_dir / item.file).read_bytes()).hexdigest() == item.sha256
    # a plain RGB PNG is stored byte for byte; converted images become lossless PNGs
    assert (dataset.images_dir / "good-0.png").read_bytes() == (upload_folder / "good-0.png").read_bytes()
    assert by_source["rotated.jpg"].file == "rotated.png" and (
        by_source["rotated.jpg"].width,
        by_source["rotated.jpg"].height,
    ) == (64, 96)
    assert by_source["jpeg-named.png"].file == "jpeg-named.jpg"
    assert any("EXIF orientation 6" in c for c in by_source["rotated.jpg"].conversions)


def test_unsafe_and_unicode_names_become_readable_ascii(imported_folder):
    dataset, _ = imported_folder
    files = {item.source.split("/")[-1]: item.file for item in dataset.items}
    assert files["Café ☕ (1).png"] == "Cafe-1.png"
    assert files["CON.png"] == "_CON.png"
    assert all(file.isascii() for file in files.values())


def test_captions_with_problems_are_not_used_silently(imported_folder):
    dataset, report = imported_folder
    items = {item.source.split("/")[-1]: item for item in dataset.items}
    assert items["bad-utf8.png"].caption == ""  # never a mojibake guess
    assert items["empty-caption.png"].caption == ""
    long_warning = next(w for w in items["long-caption.png"].warnings if w.code == "caption-too-long")
    assert "tokens, over the text encoder's 77" in long_warning.message
    assert int(long_warning.message.split()[0]) > 77


def test_manifest_records_items_and_rejections(imported_folder):
    dataset, _ = imported_folder
    manifest = json.loads((dataset.root / "manifest.json").read_text())
    assert len(manifest["items"]) == 20 and len(manifest["rejected"]) == 8
    reloaded = Dataset.load(dataset.root)
    assert reloaded.items == dataset.items and reloaded.rejected == dataset.rejected


def test_zip_attacks_are_refused_and_the_rest_imports(upload_zip, tmp_path):
    dataset, report = import_dataset("zipped", [upload_zip], root=tmp_path / "datasets", options=_options())
    rejected = {r.source.removeprefix("upload.zip:"): r.issue.code for r in report.rejected}
    assert rejected == REJECTED_IN_ZIP
    assert len(report.accepted) == 5
    assert report.skipped == ["upload.zip:__MACOSX/photos/._dog-0.png"]
    # nothing was written outside the dataset
    written = [p.name for p in tmp_path.rglob("*")]
    assert not any(word in name for name in written for word in ("escape", "absolute", "drive", "link", "zeros"))
    assert {p.name for p in (tmp_path / "datasets").iterdir()} == {"zipped"}


def test_zip_concepts_and_both_caption_conventions(upload_zip, tmp_path):
    dataset, report = import_dataset("zipped", [upload_zip], root=tmp_path / "datasets", options=_options())
    items = {item.source.removeprefix("upload.zip:"): item for item in dataset.items}
    dog = items["photos/10_sks dog/dog-0.png"]
    assert (dog.concept, dog.role, dog.repeats, dog.caption_source) == ("sks dog", "instance", 10, "sidecar")
    plain = items["photos/class/plain-1.png"]
    assert (plain.concept, plain.role, plain.repeats, plain.caption_source) == ("class", "class", 1, "metadata.jsonl")
    assert plain.caption.startswith("a ") and plain.caption.endswith("background")
    assert items["photos/日本語の写真.png"].file.startswith("image-")
    assert [n.code for n in report.notes] == ["metadata-line"]  # the "not json" line, reported, not fatal


def test_whole_archive_refused_when_it_declares_too_much(upload_zip, tmp_path):
    options = _options(zip_limits=ZipLimits(max_total_bytes=50 * 2**20))
    dataset, report = import_dataset("capped", [upload_zip], root=tmp_path / "datasets", options=options)
    assert [(r.source, r.issue.code) for r in report.rejected] == [("upload.zip", "zip-bomb")]
    assert report.accepted == [] and dataset.items == []


def test_adding_to_a_dataset_finds_duplicates_of_what_is_already_there(tmp_path):
    image, caption = shape_images(1, seed=5)[0]
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(png_bytes(image))
    second.write_bytes(png_bytes(image, compress_level=9))
    root = tmp_path / "datasets"
    import_dataset("grow", [first], root=root, options=_options())
    with pytest.raises(ValueError, match="already exists"):
        import_dataset("grow", [second], root=root, options=_options())
    dataset, report = import_dataset("grow", [second], root=root, options=_options(), add=True)
    assert [r.issue.code for r in report.rejected] == ["duplicate"] and len(dataset.items) == 1


def test_sidecar_wins_over_metadata_and_says_so(tmp_path):
    folder = tmp_path / "up"
    folder.mkdir()
    image, caption = shape_images(1, seed=6)[0]
    (folder / "x.png").write_bytes(png_bytes(image))
    (folder / "x.txt").write_text(caption)
    (folder / "metadata.jsonl").write_text(json.dumps({"file_name": "x.png", "text": "something else"}) + "\n")
    (folder / "orphan.txt").write_text("a caption without its image")
    dataset, report = import_dataset("conflict", [folder], root=tmp_path / "d", options=_options())
    item = dataset.items[0]
    assert item.caption == caption and [w.code for w in item.warnings] == ["caption-conflict"]
    assert [n.code for n in report.notes] == ["caption-orphan"]


def test_trigger_given_at_import_is_prepended_to_instance_captions(upload_zip, tmp_path):
    dataset, _ = import_dataset("trig", [upload_zip], root=tmp_path / "d", options=_options(trigger="sks"))
    assert dataset.trigger == "sks"
    for item in dataset.items:
        if item.role == "instance" and item.caption:
            assert item.caption.startswith("sks, ")
        if item.role == "class":
            assert "sks" not in item.caption.split()


def test_loose_files_with_their_captions(tmp_path):
    image, caption = shape_images(1, seed=12)[0]
    (tmp_path / "cat.png").write_bytes(png_bytes(image))
    (tmp_path / "cat.txt").write_text(caption)
    dataset, report = import_dataset(
        "loose", [tmp_path / "cat.png", tmp_path / "cat.txt"], root=tmp_path / "d", options=_options()
    )
    assert report.summary() == "1 accepted, 0 rejected, 0 warning(s)"
    assert dataset.items[0].caption == caption


def test_conversions_give_the_right_pixels(imported_folder):
    dataset, _ = imported_folder
    items = {item.source.split("/")[-1]: item for item in dataset.items}

    def pixels(name: str) -> np.ndarray:
        return np.asarray(Image.open(dataset.images_dir / items[name].file), dtype=np.int16)

    assert np.abs(pixels("cmyk.jpg")[48, 48] - (220, 40, 40)).max() < 40  # still red
    assert tuple(pixels("palette.png")[2, 2]) == (255, 255, 255)  # transparent -> the white background
    assert tuple(pixels("palette.png")[48, 48]) == (40, 80, 220)
    assert tuple(pixels("grey-alpha.png")[48, 90]) == (255, 255, 255) and tuple(pixels("grey-alpha.png")[48, 4]) == (
        60,
        60,
        60,
    )
    ramp = pixels("grey16.png")[0, :, 0]
    assert ramp[0] == 0 and ramp[-1] == 255 and 120 <= ramp[48] <= 135  # scaled, not clipped at 255
    rotated = pixels("rotated.jpg")
    assert rotated[2, 32, 0] > 180 and rotated[2, 32, 1] < 90  # the red band is now at the top


def test_links_out_of_an_uploaded_folder_are_refused(tmp_path):
    folder = tmp_path / "up"
    folder.mkdir()
    image, _ = shape_images(1, seed=13)[0]
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes(image))
    (folder / "inside.png").write_bytes(png_bytes(shape_images(1, seed=14)[0][0]))
    (folder / "alias.png").symlink_to(folder / "inside.png")
    (folder / "escape.png").symlink_to(outside)
    dataset, report = import_dataset("links", [folder], root=tmp_path / "d", options=_options())
    # a link within the folder is read like the file it names, so the two are duplicates (the first is kept)
    assert [(r.source, r.issue.code) for r in report.rejected] == [
        ("up/escape.png", "link-outside"),
        ("up/inside.png", "duplicate"),
    ]
    assert [item.source for item in dataset.items] == ["up/alias.png"]


def test_one_shape_on_white_and_on_gray_is_not_almost_the_same(tmp_path):
    """pHash sees grey layout only: the colours must be near too before a pair is flagged."""
    from studio.data.fingerprints import hamming, perceptual_hash
    from studio.pocket.world import Scene, render

    white, gray = (render(Scene("star", "purple", background), 64) for background in ("white", "gray"))
    assert hamming(perceptual_hash(white), perceptual_hash(gray)) <= 6  # what flagged them before
    for name, image in (("white.png", white), ("gray.png", gray)):
        (tmp_path / name).write_bytes(png_bytes(image))
    dataset, _ = import_dataset("stars", [tmp_path / "white.png", tmp_path / "gray.png"], root=tmp_path / "datasets",
                                options=_options())  # fmt: skip
    assert not [w for item in dataset.items for w in item.warnings if w.code == "near-duplicate"]
