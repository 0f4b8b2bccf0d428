"""What a run trains on: a prepared dataset, a studio dataset (prepared on the fly), or a folder of images + .txt."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from studio.data.crops import center_box
from studio.data.dataset import Dataset, datasets_root
from studio.data.prepare import PreparedDataset, PrepareSettings, bucket_batches, prepare_dataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True)
class TrainingImage:
    path: Path
    caption: str
    sha256: str
    width: int
    height: int
    repeats: int = 1

    @property
    def bucket(self) -> tuple[int, int]:
        return (self.width, self.height)

    def pixels(self) -> np.ndarray:
        """(3, H, W) float32 in [-1, 1], the VAE's input range."""
        with Image.open(self.path) as image:
            rgb = image.convert("RGB")
            if rgb.size != self.bucket:
                rgb = rgb.resize(self.bucket, Image.Resampling.LANCZOS, box=center_box(rgb.size, self.bucket))
            array = np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0
        return array.transpose(2, 0, 1).copy()


def _from_prepared(folder: Path) -> list[TrainingImage]:
    prepared = PreparedDataset.load(folder)
    return [
        TrainingImage(folder / i.file, i.caption, i.sha256, i.width, i.height, max(1, i.repeats))
        for i in prepared.items
    ]


def _from_plain_folder(folder: Path, resolution: int) -> list[TrainingImage]:
    items = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        sidecar = path.with_suffix(".txt")
        caption = sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else ""
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        items.append(TrainingImage(path, caption, digest, resolution, resolution))
    return items


def load_training_images(source: str | Path, resolution: int) -> list[TrainingImage]:
    """Resolve `source` (a path, or a dataset name under data/datasets) to the images a run trains on."""
    path = Path(source)
    if not path.exists() and not any(sep in str(source) for sep in "/\\"):
        path = datasets_root() / str(source)
    if not path.is_dir():
        raise FileNotFoundError(f"no dataset {str(source)!r} (neither a folder nor a dataset name)")
    if (path / "prepared.json").is_file():
        items = _from_prepared(path)
    elif (path / "manifest.json").is_file():
        prepared = prepare_dataset(Dataset.load(path), PrepareSettings(resolution=resolution))
        items = _from_prepared(prepared.folder)
    else:
        items = _from_plain_folder(path, resolution)
    if not items:
        raise ValueError(f"dataset {str(source)!r} has no images")
    return items


def dataset_manifest(source: str | Path, items: list[TrainingImage]) -> dict:
    """dataset.json of a run: exactly what it trained on."""
    return {
        "source": str(source),
        "items": [
            {
                "file": i.path.name,
                "sha256": i.sha256,
                "caption": i.caption,
                "size": list(i.bucket),
                "repeats": i.repeats,
            }
            for i in items
        ],
    }


def batch_at(items: list[TrainingImage], batch_size: int, seed: int, position: int) -> list[TrainingImage]:
    """The micro-batch at `position` (0, 1, 2, ... across epochs): a pure function, so resume needs only the index."""
    first = bucket_batches(items, batch_size, seed=seed)
    epoch, index = divmod(position, len(first))
    # every epoch its own shuffle, seeded by (seed, epoch)
    return bucket_batches(items, batch_size, seed=seed * 100_003 + epoch)[index] if epoch else first[index]
