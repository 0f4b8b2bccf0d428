"""Import an upload (files, folders, zip archives) into a dataset: every file accepted or refused with a reason.

One bad file never stops the rest: each image is read, checked and stored on its own. Captions come from a
sidecar `.txt`/`.caption` beside the image (kohya) or from a `metadata.jsonl` in a folder above it (Hugging Face
imagefolder); when both exist and differ the sidecar wins and the item says so. The user's files are only read.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from studio.data.archive import ZipLimits
from studio.data.caption_text import TokenCounter, caption_issues, decode_caption, normalise_caption
from studio.data.concepts import Concept, concept_from_path
from studio.data.dataset import Dataset, DatasetItem, datasets_root, parse_metadata_jsonl, validate_name
from studio.data.files import WriteFailed, write_bytes_atomic
from studio.data.fingerprints import NEAR_DUPLICATE_DISTANCE, nearest, same_colours
from studio.data.issues import Issue, RejectedFile
from studio.data.names import slugify, unique_name
from studio.data.sources import Entry, collect
from studio.data.trigger import validate_trigger, with_trigger
from studio.data.validate import (
    IMAGE_SUFFIXES,
    STORED_AS_IS,
    CheckedImage,
    ImageRules,
    check_image,
    extension_warning,
    file_size_issue,
)

CAPTION_SUFFIXES = (".txt", ".caption")  # in order of preference when both exist
METADATA_NAME = "metadata.jsonl"
# a caption is a sentence or two; a caption file this large is something else and is not read
MAX_CAPTION_BYTES = 64 * 2**10
MAX_METADATA_BYTES = 64 * 2**20


@dataclass
class ImportOptions:
    rules: ImageRules = field(default_factory=ImageRules)
    zip_limits: ZipLimits = field(default_factory=ZipLimits)
    near_duplicate_distance: int = NEAR_DUPLICATE_DISTANCE
    trigger: str | None = None  # set as the dataset's trigger and prepended to instance captions that lack it
    token_counter: TokenCounter | None = None  # without one, caption length is not checked


@dataclass
class ImportReport:
    dataset: str
    accepted: list[DatasetItem] = field(default_factory=list)
    rejected: list[RejectedFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[Issue] = field(default_factory=list)  # about the upload, not one image: bad metadata lines, ...

    @property
    def warning_count(self) -> int:
        return sum(len(item.warnings) for item in self.accepted) + len(self.notes)

    def summary(self) -> str:
        return f"{len(self.accepted)} accepted, {len(self.rejected)} rejected, {self.warning_count} warning(s)" + (
            f", {len(self.skipped)} system file(s) skipped" if self.skipped else ""
        )

    def as_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "summary": self.summary(),
            "accepted": [
                {"file": i.file, "source": i.source, "warnings": [w.as_dict() for w in i.warnings]}
                for i in self.accepted
            ],
            "rejected": [r.as_dict() for r in self.rejected],
            "skipped": self.skipped,
            "notes": [n.as_dict() for n in self.notes],
        }


@dataclass
class _Captions:
    """Caption sources of one upload, looked up by (group, relative path)."""

    sidecars: dict[tuple[str, PurePosixPath], Entry] = field(default_factory=dict)
    metadata: dict[tuple[str, PurePosixPath], dict[str, str]] = field(default_factory=dict)
    used: set[tuple[str, PurePosixPath]] = field(default_factory=set)

    def sidecar_for(self, entry: Entry) -> Entry | None:
        key = (entry.group, entry.path.with_suffix(""))
        # an image's sidecar is spoken for even if the image is refused: it is not an orphan
        self.used.add(key)
        return self.sidecars.get(key)

    def metadata_for(self, entry: Entry) -> str | None:
        # the nearest metadata.jsonl above the image decides; its file_name is relative to its own folder
        folder = entry.path.parent
        while True:
            table = self.metadata.get((entry.group, folder))
            if table is not None:
                relative = entry.path.relative_to(folder).as_posix()
                if relative in table:
                    return table[relative]
            if folder == PurePosixPath("."):
                return None
            folder = folder.parent


def _sort_entries(entries: list[Entry], report: ImportReport) -> tuple[list[Entry], _Captions]:
    images, captions = [], _Captions()
    for entry in entries:
        suffix = entry.path.suffix.lower()
        if entry.path.name.lower() == METADATA_NAME:
            if entry.size > MAX_METADATA_BYTES:
                report.notes.append(Issue("metadata-file", f"{entry.label} is over 64 MiB; not used"))
                continue
            try:
                text = entry.read().decode("utf-8-sig")
            except UnicodeDecodeError as error:
                report.notes.append(Issue("metadata-file", f"{entry.label} is not valid UTF-8 ({error}); not used"))
                continue
            except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as error:
                report.notes.append(Issue("metadata-file", f"{entry.label} cannot be read ({error}); not used"))
                continue
            table, problems = parse_metadata_jsonl(text, entry.label)
            captions.metadata[(entry.group, entry.path.parent)] = table
            report.notes += problems
        elif suffix in CAPTION_SUFFIXES:
            key = (entry.group, entry.path.with_suffix(""))
            if key not in captions.sidecars or suffix == CAPTION_SUFFIXES[0]:
                captions.sidecars[key] = entry
        elif suffix in IMAGE_SUFFIXES:
            images.append(entry)
        else:
            report.rejected.append(
                RejectedFile(
                    entry.label,
                    Issue("unsupported-file", f"not an image ({', '.join(IMAGE_SUFFIXES)}) or a caption file"),
                )
            )
    return images, captions


class _Importer:
    def __init__(self, dataset: Dataset, options: ImportOptions, report: ImportReport) -> None:
        self.dataset = dataset
        self.options = options
        self.report = report
        self.pixels = {item.pixel_sha256: item.file for item in dataset.items}
        self.phashes = {item.file: int(item.phash, 16) for item in dataset.items}
        self.stems = {item.stem.lower() for item in dataset.items}

    def _same_colours(self, image, stored_file: str) -> bool:
        """Near in pHash (grey layout) and in colour too: only then is it "almost the same" as a kept image."""
        from PIL import Image

        try:
            with Image.open(self.dataset.images_dir / stored_file) as stored:
                return same_colours(image, stored)
        except OSError:
            return True  # the kept file cannot be read back: the hashes alone decide, as before

    def reject(self, entry: Entry, code: str, message: str) -> None:
        self.report.rejected.append(RejectedFile(entry.label, Issue(code, message)))

    def run_one(self, entry: Entry, captions: _Captions) -> None:
        rules = self.options.rules
        sidecar = captions.sidecar_for(entry)
        try:
            concept = concept_from_path(entry.path)
        except ValueError as error:
            return self.reject(entry, "bad-folder-name", str(error))
        too_large = file_size_issue(entry.size, rules)  # before reading: a huge file is never loaded
        if too_large:
            return self.report.rejected.append(RejectedFile(entry.label, too_large))
        try:
            data = entry.read()
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            return self.reject(entry, "zip-corrupt", f"the archive entry cannot be read ({error})")
        except OSError as error:
            return self.reject(entry, "unreadable", f"cannot be read ({error.strerror or error})")
        checked = check_image(data, entry.label, rules)
        if not checked.accepted:
            return self.report.rejected.append(RejectedFile(entry.label, checked.rejection))
        duplicate_of = self.pixels.get(checked.pixel_sha256)
        if duplicate_of:
            return self.reject(entry, "duplicate", f"the same pixels as {duplicate_of}, which is kept")

        warnings = list(checked.warnings)
        mismatch = extension_warning(entry.path.name, checked.format)
        if mismatch:
            warnings.append(mismatch)
        close = nearest(checked.phash, self.phashes)
        if close and close[1] <= self.options.near_duplicate_distance and self._same_colours(checked.image, close[0]):
            warnings.append(
                Issue("near-duplicate", f"looks almost the same as {close[0]} ({close[1]} of 64 hash bits differ)")
            )
        caption, source, caption_warnings = self._caption(sidecar, captions.metadata_for(entry), concept.role)
        warnings += caption_warnings

        item = self._store(entry, data, checked, concept, caption, source, warnings)
        self.pixels[item.pixel_sha256] = item.file
        self.phashes[item.file] = checked.phash
        self.dataset.items.append(item)
        self.report.accepted.append(item)

    def _caption(self, sidecar: Entry | None, from_metadata: str | None, role: str) -> tuple[str, str, list[Issue]]:
        warnings: list[Issue] = []
        caption, source = None, ""
        if sidecar is not None and sidecar.size > MAX_CAPTION_BYTES:
            warnings.append(
                Issue("caption-file-too-large", f"{sidecar.label} is over {MAX_CAPTION_BYTES // 1024} KiB; not used")
            )
        elif sidecar is not None:
            caption, problems = decode_caption(sidecar.read(), sidecar.label)
            warnings += problems
            source = "sidecar" if caption is not None else ""
        if from_metadata is not None:
            from_metadata = normalise_caption(from_metadata)
            if caption is None:
                caption, source = from_metadata, METADATA_NAME
            elif caption != from_metadata:
                warnings.append(
                    Issue("caption-conflict", f"the .txt caption differs from {METADATA_NAME}; the .txt one is used")
                )
        if caption is None:
            if not any(w.code in ("caption-not-utf8", "caption-file-too-large") for w in warnings):
                warnings.append(Issue("caption-missing", "no caption yet; caption it before training"))
            return "", "", warnings
        trigger = self.dataset.trigger if self.options.trigger else None
        if trigger and role == "instance" and caption:
            caption = with_trigger(caption, trigger)
        warnings += caption_issues(caption, self.options.token_counter)
        return caption, source, warnings

    def _store(
        self,
        entry: Entry,
        data: bytes,
        checked: CheckedImage,
        concept: Concept,
        caption: str,
        caption_source: str,
        warnings: list[Issue],
    ) -> DatasetItem:
        stem = unique_name(slugify(entry.path.stem), "", self.stems)
        if checked.unchanged:
            stored, suffix = data, STORED_AS_IS[checked.format]
        else:
            # lossless: whatever had to change (orientation, colour, alpha, mode) adds no compression artefacts
            buffer = io.BytesIO()
            checked.image.save(buffer, "PNG")
            stored, suffix = buffer.getvalue(), ".png"
        file = stem + suffix
        write_bytes_atomic(self.dataset.images_dir / file, stored)
        return DatasetItem(
            file=file,
            source=entry.label,
            sha256=hashlib.sha256(stored).hexdigest(),
            pixel_sha256=checked.pixel_sha256,
            phash=f"{checked.phash:016x}",
            width=checked.image.width,
            height=checked.image.height,
            bytes=len(stored),
            concept=concept.name,
            role=concept.role,
            repeats=concept.repeats,
            caption=caption,
            caption_source=caption_source,
            warnings=warnings,
            conversions=checked.conversions,
        )


def import_into(
    dataset: Dataset,
    sources: Sequence[str | Path],
    options: ImportOptions | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Add an upload to an existing dataset and save it; returns what was accepted, refused and why."""
    options = options or ImportOptions()
    if options.trigger:
        dataset.trigger = validate_trigger(options.trigger)
    report = ImportReport(dataset.name)
    before = (list(dataset.items), list(dataset.rejected), dataset.trigger)
    collected = collect(sources, options.zip_limits)
    try:
        report.rejected += collected.rejected
        report.skipped += collected.skipped
        images, captions = _sort_entries(collected.entries, report)
        importer = _Importer(dataset, options, report)
        for done, entry in enumerate(images, start=1):
            try:
                importer.run_one(entry, captions)
            except WriteFailed:
                raise  # the disk, not this file: every later file would fail the same way
            except Exception as error:  # one bad file never stops the rest; the reason still reaches the report
                importer.reject(entry, "unreadable", f"could not be imported ({type(error).__name__}: {error})")
            if on_progress:
                on_progress(done, len(images))
        for key, sidecar in captions.sidecars.items():
            if key not in captions.used:
                report.notes.append(Issue("caption-orphan", f"{sidecar.label} has no image beside it; not used"))
        dataset.rejected += report.rejected
        dataset.save()
    except BaseException:
        _roll_back(dataset, *before)
        raise
    finally:
        collected.close()
    return report


def _roll_back(dataset: Dataset, items: list[DatasetItem], rejected: list[RejectedFile], trigger: str | None) -> None:
    """Undo a failed import: remove the files it stored and put the dataset back as it was, so no image is left
    outside the manifest. Best effort: on a full or read-only disk these writes may fail too, and must not hide
    the error that stopped the import."""
    kept = {item.file for item in items}
    for item in dataset.items:
        if item.file not in kept:
            for path in (dataset.images_dir / item.file, dataset.images_dir / f"{item.stem}.txt"):
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
    dataset.items, dataset.rejected, dataset.trigger = items, rejected, trigger
    with contextlib.suppress(OSError):
        dataset.save()  # metadata.jsonl and the sidecars may already name the removed images


def import_dataset(
    name: str,
    sources: Sequence[str | Path],
    root: Path | None = None,
    options: ImportOptions | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    add: bool = False,
) -> tuple[Dataset, ImportReport]:
    """Create dataset `name` under `root` (default data/datasets) from an upload, or add to it with `add=True`."""
    folder = (root or datasets_root()) / validate_name(name)
    if add:
        dataset = Dataset.load(folder)
        return dataset, import_into(dataset, sources, options, on_progress)
    if (folder / "manifest.json").exists():
        raise ValueError(f"dataset {name!r} already exists; pick another name or add to it")
    new_folder = not folder.exists()
    try:
        dataset = Dataset.create(folder)
        return dataset, import_into(dataset, sources, options, on_progress)
    except BaseException:
        if new_folder:  # a new dataset that failed is not left half made
            shutil.rmtree(folder, ignore_errors=True)
        raise
