"""Prepare a dataset for training: every image resized and cropped to its training size, with a manifest.

Three ways to get there:
- `center`: scale to cover resolution x resolution, keep the centre (the classic DreamBooth setting);
- `smart`: the same size, but the window goes where the subject is (see crops.py);
- `buckets`: each image goes to the aspect-ratio bucket that keeps (almost) all of it (see buckets.py); the
  training engine then batches by bucket with `bucket_batches`.
Resampling is Lanczos straight from the source pixels (crop and resize in one step); output is PNG, so no
compression artefacts are added. `prepared.json` lists every file with its hash, caption and bucket, and a
fingerprint over all of them, so a run can say exactly what it trained on.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from studio.data.buckets import bucket_for, default_step
from studio.data.crops import center_box, smart_box
from studio.data.dataset import Dataset, metadata_jsonl
from studio.data.files import write_bytes_atomic, write_failure, write_json_atomic, write_text_atomic, writing_in
from studio.data.trigger import enforce_trigger_on_items

MODES = ("center", "smart", "buckets")
PREPARED_MANIFEST = "prepared.json"
PREPARED_VERSION = 1


@dataclass(frozen=True)
class PrepareSettings:
    resolution: int = field(
        default=512, metadata={"help": "Training resolution: images become about this many pixels square."}
    )
    mode: str = field(
        default="center", metadata={"help": "center, smart (keeps the subject) or buckets (keeps the whole image)."}
    )
    bucket_step: int = field(
        default=0, metadata={"help": "Bucket sides are multiples of this (0: 64 for SD, 16 for the pocket model)."}
    )
    max_aspect: float = field(default=4.0, metadata={"help": "The most elongated bucket, as long side : short side."})
    allow_empty_captions: bool = field(default=False, metadata={"help": "Prepare even if some captions are empty."})

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.resolution < 8:
            raise ValueError(f"resolution must be at least 8, got {self.resolution}")
        if self.bucket_step < 0 or (self.bucket_step and self.resolution % self.bucket_step):
            raise ValueError(f"resolution {self.resolution} must be a multiple of the bucket step {self.bucket_step}")
        if self.max_aspect < 1:
            raise ValueError(f"max_aspect must be at least 1, got {self.max_aspect}")

    @property
    def step(self) -> int:
        return self.bucket_step or default_step(self.resolution)

    @property
    def variant(self) -> str:
        """Folder name under prepared/: one per distinct setting, so several can coexist."""
        return f"buckets-{self.resolution}-s{self.step}" if self.mode == "buckets" else f"{self.mode}-{self.resolution}"


@dataclass
class PreparedItem:
    file: str
    source_file: str
    source_sha256: str
    sha256: str
    width: int
    height: int
    crop: list[float]  # (left, top, right, bottom) in the source image's pixels
    caption: str
    concept: str
    role: str
    repeats: int

    @property
    def bucket(self) -> tuple[int, int]:
        return (self.width, self.height)


@dataclass
class PreparedDataset:
    folder: Path
    dataset: str
    settings: PrepareSettings
    items: list[PreparedItem]
    fingerprint: str

    def buckets(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for item in self.items:
            counts[f"{item.width}x{item.height}"] += 1
        return dict(sorted(counts.items()))

    def as_dict(self) -> dict:
        return {
            "version": PREPARED_VERSION,
            "dataset": self.dataset,
            "settings": asdict(self.settings),
            "fingerprint": self.fingerprint,
            "buckets": self.buckets(),
            "items": [asdict(item) for item in self.items],
        }

    @classmethod
    def load(cls, folder: Path) -> PreparedDataset:
        data = json.loads((folder / PREPARED_MANIFEST).read_text(encoding="utf-8"))
        if data.get("version") != PREPARED_VERSION:
            raise ValueError(f"{folder / PREPARED_MANIFEST}: unknown version {data.get('version')!r}")
        return cls(
            folder,
            data["dataset"],
            PrepareSettings(**data["settings"]),
            [PreparedItem(**item) for item in data["items"]],
            data["fingerprint"],
        )


def fingerprint(items: Iterable[PreparedItem]) -> str:
    """One hash for exactly these pixels with exactly these captions and repeats."""
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: i.file):
        digest.update(json.dumps([item.file, item.sha256, item.caption, item.repeats]).encode("utf-8"))
    return digest.hexdigest()


def target_size(size: tuple[int, int], settings: PrepareSettings) -> tuple[int, int]:
    if settings.mode == "buckets":
        return bucket_for(size, settings.resolution, settings.step, settings.max_aspect)
    return (settings.resolution, settings.resolution)


def prepare_image(image: Image.Image, settings: PrepareSettings) -> tuple[Image.Image, tuple[float, ...]]:
    """The training-size image and the box of the source it shows."""
    target = target_size(image.size, settings)
    box = smart_box(image, target) if settings.mode == "smart" else center_box(image.size, target)
    # crop and resize in one Lanczos pass from the source; reducing_gap first shrinks huge photos by whole
    # factors (a box filter, visually identical) so a 24 MP photo does not cost a full-size Lanczos
    return image.resize(target, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0), box


def _check_captions(dataset: Dataset, settings: PrepareSettings) -> None:
    if dataset.trigger:
        enforce_trigger_on_items(dataset.items, dataset.trigger)
    empty = [item.file for item in dataset.items if not item.caption]
    if empty and not settings.allow_empty_captions:
        shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        raise ValueError(f"{len(empty)} image(s) have no caption ({shown}); caption them or allow empty captions")


def prepare_dataset(
    dataset: Dataset, settings: PrepareSettings | None = None, on_progress: Callable[[int, int], None] | None = None
) -> PreparedDataset:
    """Write `prepared/<variant>/` (images, captions in both conventions, prepared.json) and return it.

    The folder is built beside the old one and swapped in at the end, so a run never reads half of it.
    """
    settings = settings or PrepareSettings()
    if not dataset.items:
        raise ValueError(f"dataset {dataset.name!r} has no images to prepare")
    _check_captions(dataset, settings)
    parent = dataset.root / "prepared"
    with writing_in(parent):
        parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(dir=parent, prefix=f".{settings.variant}."))
    try:
        items = []
        for done, source in enumerate(dataset.items, start=1):
            with Image.open(dataset.images_dir / source.file) as opened:
                prepared, box = prepare_image(opened.convert("RGB"), settings)
            buffer = io.BytesIO()
            prepared.save(buffer, "PNG")
            file = f"{source.stem}.png"
            write_bytes_atomic(building / file, buffer.getvalue())
            write_text_atomic(building / f"{source.stem}.txt", source.caption + "\n")
            items.append(
                PreparedItem(
                    file=file,
                    source_file=source.file,
                    source_sha256=source.sha256,
                    sha256=hashlib.sha256(buffer.getvalue()).hexdigest(),
                    width=prepared.width,
                    height=prepared.height,
                    crop=[round(v, 3) for v in box],
                    caption=source.caption,
                    concept=source.concept,
                    role=source.role,
                    repeats=source.repeats,
                )
            )
            if on_progress:
                on_progress(done, len(dataset.items))
        result = PreparedDataset(parent / settings.variant, dataset.name, settings, items, fingerprint(items))
        write_text_atomic(building / "metadata.jsonl", metadata_jsonl(items))
        write_json_atomic(building / PREPARED_MANIFEST, result.as_dict())
        _swap_in(building, result.folder)
    except BaseException as error:
        shutil.rmtree(building, ignore_errors=True)
        failure = write_failure(error, parent)  # named by prepared/, not the hidden folder it was built in
        if failure is None:
            raise
        raise failure from error
    return result


def _swap_in(new: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        new.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(final)


def group_by_bucket(items: Iterable[PreparedItem]) -> dict[tuple[int, int], list[PreparedItem]]:
    groups: dict[tuple[int, int], list[PreparedItem]] = defaultdict(list)
    for item in items:
        groups[item.bucket].append(item)
    return dict(groups)


def bucket_batches(
    items: Iterable[PreparedItem], batch_size: int, seed: int = 0, repeats: bool = True, drop_last: bool = False
) -> list[list[PreparedItem]]:
    """One epoch of batches in which every batch has one size (one bucket), in a seeded random order.

    With `repeats`, an item from a kohya `10_name` folder appears 10 times per epoch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    rng = random.Random(seed)
    groups = group_by_bucket(items)
    batches = []
    for bucket in sorted(groups):
        members = [item for item in groups[bucket] for _ in range(item.repeats if repeats else 1)]
        rng.shuffle(members)
        for start in range(0, len(members), batch_size):
            batch = members[start : start + batch_size]
            if len(batch) == batch_size or not drop_last:
                batches.append(batch)
    rng.shuffle(batches)
    return batches
