"""A dataset on disk: `images/` with captions in two conventions, and `manifest.json`.

```
data/datasets/<name>/
  manifest.json        the source of truth: every item (hashes, size, concept, repeats, caption, warnings),
                       the files refused at import and why, the trigger word
  images/
    <file>.png|.jpg    the accepted images (RGB, upright), never the user's originals
    <file>.txt         the caption (kohya / sd-scripts convention)
    metadata.jsonl     the same captions, Hugging Face imagefolder convention (file_name + text)
  prepared/<variant>/  resized and cropped copies for training (see prepare.py)
```
Every save writes the captions to both conventions, so either tool family reads the same text and a round
trip through any of them is lossless. Writes are atomic, so a crash mid-save leaves the previous version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from studio import paths
from studio.data.files import write_json_atomic, write_text_atomic
from studio.data.issues import Issue, RejectedFile

MANIFEST = "manifest.json"
IMAGES = "images"
METADATA = "metadata.jsonl"
MANIFEST_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def datasets_root() -> Path:
    return paths.data_dir() / "datasets"


def list_datasets(root: Path | None = None) -> list[str]:
    """Names of the datasets under `root` (default data/datasets), sorted."""
    root = root or datasets_root()
    if not root.is_dir():
        return []
    return sorted(folder.name for folder in root.iterdir() if (folder / MANIFEST).is_file())


def validate_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name:
        raise ValueError(
            f"dataset name {name!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


@dataclass
class DatasetItem:
    file: str  # name inside images/
    source: str  # where it came from in the upload, for the report
    sha256: str  # of the stored file
    pixel_sha256: str  # of the decoded RGB pixels: exact duplicates whatever the container
    phash: str  # 64-bit perceptual hash, hex: near duplicates
    width: int
    height: int
    bytes: int
    concept: str = "instance"
    role: str = "instance"
    repeats: int = 1
    caption: str = ""
    caption_source: str = ""  # "sidecar", "metadata.jsonl", a captioner's name, "edited", or "" for none
    warnings: list[Issue] = field(default_factory=list)
    conversions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["warnings"] = [w.as_dict() for w in self.warnings]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> DatasetItem:
        data = dict(data)
        data["warnings"] = [Issue.from_dict(w) for w in data.get("warnings", [])]
        return cls(**data)

    @property
    def stem(self) -> str:
        return Path(self.file).stem


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Dataset:
    root: Path
    items: list[DatasetItem] = field(default_factory=list)
    rejected: list[RejectedFile] = field(default_factory=list)
    trigger: str | None = None
    created: str = field(default_factory=_now)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def images_dir(self) -> Path:
        return self.root / IMAGES

    def item(self, file: str) -> DatasetItem:
        for item in self.items:
            if item.file == file:
                return item
        raise KeyError(f"no image named {file!r} in dataset {self.name!r}")

    def captions(self) -> dict[str, str]:
        return {item.file: item.caption for item in self.items}

    # ---------------------------------------------------------------- disk

    @classmethod
    def create(cls, root: Path) -> Dataset:
        validate_name(root.name)
        if (root / MANIFEST).exists():
            raise ValueError(f"dataset {root.name!r} already exists in {root.parent}")
        (root / IMAGES).mkdir(parents=True, exist_ok=True)
        dataset = cls(root)
        dataset.save()
        return dataset

    @classmethod
    def load(cls, root: Path) -> Dataset:
        manifest = root / MANIFEST
        if not manifest.is_file():
            raise FileNotFoundError(f"no dataset in {root} (manifest.json is missing)")
        data = json.loads(manifest.read_text(encoding="utf-8"))
        if data.get("version") != MANIFEST_VERSION:
            raise ValueError(f"{manifest}: unknown manifest version {data.get('version')!r}")
        return cls(
            root=root,
            items=[DatasetItem.from_dict(item) for item in data["items"]],
            rejected=[RejectedFile.from_dict(r) for r in data.get("rejected", [])],
            trigger=data.get("trigger"),
            created=data.get("created", ""),
        )

    def save(self) -> None:
        """Write captions (both conventions) then the manifest, each atomically."""
        self.images_dir.mkdir(parents=True, exist_ok=True)
        for item in self.items:
            sidecar = self.images_dir / f"{item.stem}.txt"
            text = item.caption + "\n"
            # rewriting only what changed keeps a save of a large dataset fast
            if not sidecar.is_file() or sidecar.read_text(encoding="utf-8") != text:
                write_text_atomic(sidecar, text)
        write_text_atomic(self.images_dir / METADATA, metadata_jsonl(self.items))
        write_json_atomic(
            self.root / MANIFEST,
            {
                "version": MANIFEST_VERSION,
                "name": self.name,
                "created": self.created,
                "updated": _now(),
                "trigger": self.trigger,
                "items": [item.as_dict() for item in self.items],
                "rejected": [r.as_dict() for r in self.rejected],
            },
        )

    def remove(self, file: str) -> None:
        """Drop an item and its files (the user's originals were never here)."""
        item = self.item(file)
        self.items.remove(item)
        (self.images_dir / item.file).unlink(missing_ok=True)
        (self.images_dir / f"{item.stem}.txt").unlink(missing_ok=True)


class _Captioned(Protocol):
    file: str
    caption: str
    concept: str
    repeats: int


def metadata_jsonl(items: Iterable[_Captioned]) -> str:
    """Hugging Face imagefolder metadata; `concept` and `repeats` ride along as extra columns."""
    lines = [
        json.dumps(
            {"file_name": item.file, "text": item.caption, "concept": item.concept, "repeats": item.repeats},
            ensure_ascii=False,
        )
        for item in items
    ]
    return "".join(line + "\n" for line in lines)


def parse_metadata_jsonl(text: str, source: str) -> tuple[dict[str, str], list[Issue]]:
    """`file_name` -> caption from a metadata.jsonl (column `text`, or `caption`), and a warning per bad line."""
    captions: dict[str, str] = {}
    problems: list[Issue] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            file_name = row["file_name"]
            caption = row.get("text", row.get("caption"))
            if not isinstance(file_name, str) or not isinstance(caption, str):
                raise TypeError("file_name and text must be strings")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            problems.append(Issue("metadata-line", f"{source} line {number} ignored: {error}"))
            continue
        captions[file_name.replace("\\", "/").removeprefix("./")] = caption
    return captions, problems


def read_sidecar_captions(images_dir: Path) -> dict[str, str]:
    """Image file name -> its .txt caption, as a kohya-style trainer would read the folder."""
    files = [path for path in images_dir.iterdir() if path.is_file()]
    texts = {path.stem: path for path in files if path.suffix == ".txt"}
    return {
        path.name: texts[path.stem].read_text(encoding="utf-8").strip()
        for path in files
        if path.suffix != ".txt" and path.name != METADATA and path.stem in texts
    }


def read_metadata_captions(images_dir: Path) -> dict[str, str]:
    captions, _ = parse_metadata_jsonl((images_dir / METADATA).read_text(encoding="utf-8"), METADATA)
    return captions
