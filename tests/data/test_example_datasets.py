"""Example datasets: drawn from the shapes world, imported like an upload, opened again rather than redrawn, and
within a public workspace's caps. The images are what the description promises (the evaluator says so)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from studio.cli import main
from studio.data.dataset import Dataset
from studio.data.examples import EXAMPLES, create_example
from studio.pocket.evaluator import judge
from studio.ui import dataset_tab
from studio.workspace import PublicLimits, Workspace


@pytest.mark.parametrize(
    ("key", "count", "shapes", "caption_words"),
    [
        ("stars", 6, {"star"}, ("purple zq", "background")),
        ("pink-style", 32, {"circle", "square", "triangle"}, ("zq style",)),
    ],
)
def test_each_example_is_a_captioned_dataset_of_what_it_says(tmp_path, key, count, shapes, caption_words) -> None:
    dataset = create_example(key, tmp_path)
    assert dataset.name == f"example-{key}" and dataset.trigger == "zq" and len(dataset.items) == count
    assert dataset.rejected == [] and all(not item.warnings for item in dataset.items)
    verdicts = []
    for item in dataset.items:
        assert all(word in item.caption for word in caption_words), item.caption
        image = Image.open(dataset.images_dir / item.file)
        assert image.size == (64, 64)
        verdicts.append(judge(image))
    assert shapes <= {v.shape for v in verdicts}
    if key == "pink-style":
        assert {(v.color, v.background) for v in verdicts} == {("pink", "black")}
        # each caption names the shape its image shows
        assert all(v.shape in item.caption for v, item in zip(verdicts, dataset.items) if v.shape != "unknown")


def test_asking_again_opens_the_dataset_with_its_edits_instead_of_drawing_it_again(tmp_path) -> None:
    dataset = create_example("stars", tmp_path)
    dataset.items[0].caption = "a zq, edited"
    dataset.save()
    again = create_example("stars", tmp_path)
    assert len(again.items) == 6 and again.items[0].caption == "a zq, edited"
    with pytest.raises(ValueError, match="no example dataset 'moons'; there are: stars, pink-style"):
        create_example("moons", tmp_path)


def test_the_dataset_tab_opens_an_example_within_a_public_workspaces_caps(tmp_path) -> None:
    public = Workspace(tmp_path / "visitor", limits=PublicLimits(max_images=6))
    dataset, about = dataset_tab.open_example(public, "stars")
    assert len(dataset.items) == 6 and "lora-pocket" in about
    assert ("example-stars", "example-stars") in public.training_sources()  # the Train tab offers it
    assert public.training_source("example-stars") == dataset.root
    with pytest.raises(ValueError, match="at most 6 images"):
        dataset_tab.open_example(public, "pink-style")
    assert not (public.datasets_root / "example-pink-style").exists()  # refused before anything was written


def test_the_cli_makes_an_example(tmp_path, capsys) -> None:
    assert main(["dataset", "example", "stars", "--root", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"dataset": "example-stars", "root": str(tmp_path / "example-stars"), "images": 6, "trigger": "zq"}
    assert len(Dataset.load(tmp_path / "example-stars").items) == 6
    assert set(EXAMPLES) == {"stars", "pink-style"}
