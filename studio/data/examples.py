"""Example datasets for the pocket model, one click away: a visitor with no images to hand (a demo Space, a first
run) still gets a dataset the pocket model can really learn from, and trains it in a minute.

Each example is drawn from the shapes world (so nothing is downloaded or shipped) and goes through the same import
as an upload: validated, captioned, with its trigger set. Asking twice opens the one already made.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.data.dataset import Dataset
from studio.data.importer import ImportOptions, import_dataset
from studio.data.validate import ImageRules
from studio.pocket.concept import Concept, write_concept_images
from studio.pocket.datasets import write_style_folder

SIDE = 64  # the pocket model's resolution


@dataclass(frozen=True)
class Example:
    title: str  # what the button says
    about: str  # one sentence shown once it is made: what it teaches and how to train it
    trigger: str
    draw: Callable[[Path], object]  # writes the images and their .txt captions into a folder
    method: str  # what `about` recommends, applied in the Train tab when the example is picked there
    preset: str


def _stars(folder: Path) -> None:
    write_concept_images(folder, Concept(), side=SIDE)


def _pink_style(folder: Path) -> None:
    write_style_folder(folder, "zq", count=32, side=SIDE)


EXAMPLES = {
    "stars": Example(
        "6 purple stars (a new shape)",
        "6 images of a shape the pocket model never saw, a purple star on black, white and gray, captioned "
        "'a purple zq on a black background'. Train it with LoRA and the lora-pocket preset (about a minute on a "
        "CPU), then put it where it never was: 'a purple zq on a brown background', 'an orange zq on a white "
        "background'.",
        "zq",
        _stars,
        "lora",
        "lora-pocket",
    ),
    "pink-style": Example(
        "32 pink shapes (a new style)",
        "32 images of the known shapes in a palette the pocket model never drew (pink on black), captioned "
        "'a circle in zq style'. Train it with Full fine-tune and the finetune-style-pocket preset, then ask for "
        "'a square in zq style'.",
        "zq",
        _pink_style,
        "finetune",
        "finetune-style-pocket",
    ),
}


def example_dataset_name(key: str) -> str:
    return f"example-{key}"


def example_of(dataset_choice: str | None) -> Example | None:
    """The example a dataset (or a prepared copy of it, '<name>/prepared/<variant>') was made from, if any."""
    name = (dataset_choice or "").partition("/prepared/")[0]
    return next((e for key, e in EXAMPLES.items() if example_dataset_name(key) == name), None)


def create_example(key: str, root: Path, check_upload: Callable[[str, list[Path]], None] | None = None) -> Dataset:
    """The example dataset `key` under `root` (made on first use, opened after); `check_upload` may refuse it
    the way it refuses an upload (a public workspace's caps)."""
    if key not in EXAMPLES:
        raise ValueError(f"no example dataset {key!r}; there are: {', '.join(EXAMPLES)}")
    example, name = EXAMPLES[key], example_dataset_name(key)
    if (root / name / "manifest.json").is_file():
        return Dataset.load(root / name)
    with tempfile.TemporaryDirectory(prefix="studio-example-") as scratch:
        folder = Path(scratch) / name  # the folder name is what each image's source says
        example.draw(folder)
        if check_upload is not None:
            check_upload(name, sorted(folder.iterdir()))
        options = ImportOptions(rules=ImageRules(resolution=SIDE), trigger=example.trigger)
        dataset, report = import_dataset(name, [folder], root=root, options=options)
    if report.rejected:  # drawn by us: a refusal is a bug, not the user's problem to read about later
        raise RuntimeError(f"example {key!r}: {report.rejected[0].source} was refused ({report.rejected[0].issue})")
    return dataset
