"""Captions: checks, trigger, batch captioning, bulk edits, and a lossless round trip through both conventions."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import RESOLUTION, png_bytes, shape_images

from studio.data.caption_text import TokenCounter, caption_issues, decode_caption
from studio.data.captioners import load_captioner
from studio.data.captioners.template import TemplateCaptioner
from studio.data.captions import add_prefix_suffix, apply_trigger, caption_dataset, edit_caption, find_replace
from studio.data.check import check_dataset
from studio.data.concepts import Concept, balance, concept_from_path
from studio.data.dataset import Dataset, read_metadata_captions, read_sidecar_captions
from studio.data.importer import ImportOptions, import_dataset
from studio.data.trigger import (
    MissingTriggerError,
    enforce_trigger_on_items,
    has_trigger,
    with_trigger,
)
from studio.data.validate import ImageRules


@pytest.fixture
def dreambooth_upload(tmp_path: Path) -> Path:
    """Three instance images (one captioned by hand) and two class images, none of the others captioned."""
    folder = tmp_path / "upload"
    for index, (image, _) in enumerate(shape_images(5, seed=40)):
        sub = folder / ("instance" if index < 3 else "class")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"img-{index}.png").write_bytes(png_bytes(image))
        if index == 0:
            (sub / f"img-{index}.txt").write_text("my own words")
    return folder


@pytest.fixture
def dataset(dreambooth_upload: Path, tmp_path: Path) -> Dataset:
    options = ImportOptions(rules=ImageRules(resolution=RESOLUTION))
    return import_dataset("db", [dreambooth_upload], root=tmp_path / "datasets", options=options)[0]


def test_caption_files_decode_strictly():
    assert decode_caption("\ufeffa  red\n circle ".encode(), "x.txt") == ("a red circle", [])
    text, issues = decode_caption(b"caf\xe9", "x.txt")
    assert text is None and issues[0].code == "caption-not-utf8" and "0xe9 at position 3" in issues[0].message


def test_token_count_expands_multi_vector_ti_tokens(tiny_tokenizer):
    plain = TokenCounter(tiny_tokenizer)
    with_ti = TokenCounter(tiny_tokenizer, {"<sks>": 8, "<sks-style>": 3})
    base = plain.count("a photo of a dog")
    assert with_ti.count("a photo of <sks> a dog") == base + 8
    assert with_ti.count("<sks-style> a photo of a dog") == base + 3  # not mistaken for "<sks>"
    caption = "a photo of " + "<sks> " * 10
    assert not caption_issues(caption, plain) or plain.count(caption) > 77
    issues = caption_issues(caption, with_ti)
    assert issues[0].code == "caption-too-long" and issues[0].message.startswith(f"{with_ti.count(caption)} tokens")


def test_trigger_is_matched_as_a_word():
    assert has_trigger("a photo of SKS dog", "sks") and not has_trigger("she asks", "sks")
    assert with_trigger("a dog", "sks") == "sks, a dog" and with_trigger("sks dog", "sks") == "sks dog"


def test_captioning_keeps_existing_captions_and_adds_the_trigger(dataset):
    progress: list[tuple[int, int]] = []
    report = caption_dataset(
        dataset, load_captioner("pocket"), trigger="sks", on_progress=lambda *p: progress.append(p)
    )
    assert report.kept == ["img-0.png"] and len(report.captioned) == 4
    assert progress[-1] == (4, 4) and [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert dataset.item("img-0.png").caption == "my own words"  # a person's caption is not overwritten
    for item in dataset.items:
        if item.file == "img-0.png":
            continue
        assert item.caption_source == "pocket"
        assert item.caption.startswith("sks, a ") if item.role == "instance" else "sks" not in item.caption
    # the hand-written caption lacks the trigger: it is flagged, and training data is refused until fixed
    assert [i.code for i in check_dataset(dataset).problems["img-0.png"]] == ["trigger-missing"]
    with pytest.raises(MissingTriggerError, match="img-0.png"):
        enforce_trigger_on_items(dataset.items, "sks")
    assert apply_trigger(dataset, "sks") == 1
    enforce_trigger_on_items(dataset.items, "sks")


def test_overwrite_and_cancel(dataset):
    cancel = threading.Event()
    captioner = load_captioner("pocket")
    captioner.batch_size = 1

    def stop_after_first(done: int, total: int) -> None:
        if done == 1:
            cancel.set()

    report = caption_dataset(dataset, captioner, overwrite=True, on_progress=stop_after_first, cancel=cancel)
    assert report.cancelled and report.captioned == ["img-0.png"]
    assert dataset.item("img-0.png").caption != "my own words"
    assert dataset.item("img-1.png").caption == ""  # untouched after the cancel


def test_template_captioner_keeps_the_trigger_out_of_class_captions(dataset):
    caption_dataset(dataset, TemplateCaptioner(trigger="sks", class_word="shape"), overwrite=True)
    captions = {item.file: item.caption for item in dataset.items}
    assert captions["img-1.png"] == "a photo of sks shape" and captions["img-3.png"] == "a photo of shape"
    with pytest.raises(ValueError, match="class word"):
        TemplateCaptioner(trigger="sks")


def test_bulk_edits(dataset):
    caption_dataset(dataset, TemplateCaptioner(trigger="sks", class_word="shape"), overwrite=True)
    assert find_replace(dataset, "photo", "drawing") == 5
    assert find_replace(dataset, r"^a (\w+)", r"one \1", regex=True, files=["img-1.png"]) == 1
    assert dataset.item("img-1.png").caption == "one drawing of sks shape"
    assert add_prefix_suffix(dataset, prefix="", suffix=", simple background") == 5
    assert add_prefix_suffix(dataset, suffix=", simple background") == 0  # already there: not doubled
    edit_caption(dataset, "img-2.png", "  sks shape\non a table ")
    assert dataset.item("img-2.png").caption == "sks shape on a table"
    with pytest.raises(ValueError, match="regular expression"):
        find_replace(dataset, "(", "x", regex=True)


def test_round_trip_import_caption_edit_save_reload(dataset):
    caption_dataset(dataset, load_captioner("pocket"), trigger="sks")
    find_replace(dataset, "background", "backdrop")
    edit_caption(dataset, "img-0.png", "sks, my own words, édité ✓")
    dataset.save()
    reloaded = Dataset.load(dataset.root)
    expected = dataset.captions()
    assert reloaded.captions() == expected and reloaded.trigger == "sks"
    assert read_sidecar_captions(dataset.images_dir) == expected
    assert read_metadata_captions(dataset.images_dir) == expected
    assert check_dataset(reloaded).ok


def test_check_finds_edits_made_outside_and_missing_files(dataset):
    caption_dataset(dataset, load_captioner("pocket"))
    dataset.save()
    (dataset.images_dir / "img-1.txt").write_text("edited in a text editor")
    (dataset.images_dir / "img-2.png").unlink()
    report = check_dataset(Dataset.load(dataset.root))
    codes = {file: [i.code for i in issues] for file, issues in report.problems.items()}
    assert codes == {"img-1.png": ["caption-out-of-sync"], "img-2.png": ["file-missing"]} and not report.ok
    assert report.balance.concepts["instance"].images == 3 and report.balance.concepts["class"].images == 2


def test_concept_folders_and_balance():
    from pathlib import PurePosixPath as P

    assert concept_from_path(P("x.png")) == Concept("instance", "instance", 1)
    assert concept_from_path(P("zip/20_ohwx cat/x.png")) == Concept("ohwx cat", "instance", 20)
    assert concept_from_path(P("reg/1_cat/x.png")) == Concept("cat", "class", 1)
    assert concept_from_path(P("class/x.png")) == Concept("class", "class", 1)
    with pytest.raises(ValueError, match="repeats"):
        concept_from_path(P("0_dog/x.png"))
    items = (
        [Concept("dog", "instance", 10)] * 10 + [Concept("cat", "instance", 2)] * 10 + [Concept("c", "class", 1)] * 5
    )
    items = [type("Item", (), {"concept": c.name, "role": c.role, "repeats": c.repeats})() for c in items]
    report = balance(items)
    assert report.concepts["dog"].samples == 100 and report.concepts["cat"].samples == 20
    assert [w.code for w in report.warnings] == ["concept-imbalance", "few-class-images"]
