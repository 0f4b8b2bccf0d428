"""What a user handed over (files, folders, zip archives), as one list of entries with relative paths.

Every entry carries a relative path (used to match captions and read concept folders), a label the user will
recognise in a report, and a way to read its bytes later, so a large upload is never held in memory at once.
The user's files are only ever read.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from studio.data.archive import ArchiveRefused, ZipLimits, open_zip, read_entry, scan_zip
from studio.data.issues import Issue, RejectedFile

# Files that operating systems and archivers leave behind; never images, never worth a rejection line.
_SYSTEM_FILES = {".ds_store", "thumbs.db", "desktop.ini", "icon\r"}


@dataclass
class Entry:
    group: str  # entries match captions and metadata only within their group (one folder, one zip, loose files)
    path: PurePosixPath
    label: str
    size: int
    read: Callable[[], bytes]


@dataclass
class Collected:
    entries: list[Entry] = field(default_factory=list)
    rejected: list[RejectedFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # system files, ignored quietly but listed
    archives: list[zipfile.ZipFile] = field(default_factory=list)

    def close(self) -> None:
        for archive in self.archives:
            archive.close()


def is_system_file(path: PurePosixPath) -> bool:
    return (
        path.name.lower() in _SYSTEM_FILES
        or path.name.startswith("._")  # macOS resource forks
        or any(part == "__MACOSX" for part in path.parts)
    )


def _reader(path: Path) -> Callable[[], bytes]:
    return path.read_bytes


def _add_folder(folder: Path, collected: Collected) -> None:
    # os.walk does not follow directory links, so a link cannot loop or lead the walk out of the folder
    for directory, subdirectories, files in os.walk(folder):
        subdirectories.sort()
        for name in sorted(files):
            path = Path(directory, name)
            relative = PurePosixPath(path.relative_to(folder).as_posix())
            label = f"{folder.name}/{relative}"
            if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
                collected.rejected.append(
                    RejectedFile(label, Issue("link-outside", "refused: a link pointing outside the folder"))
                )
                continue
            if not path.is_file():  # a pipe or device: reading it could block or never end
                collected.skipped.append(label)
                continue
            collected.entries.append(Entry(str(folder), relative, label, path.stat().st_size, _reader(path)))


def _add_zip(path: Path, collected: Collected, limits: ZipLimits) -> None:
    try:
        archive = open_zip(path)
        entries, refused = scan_zip(archive, limits)
    except ArchiveRefused as error:
        collected.rejected.append(RejectedFile(path.name, Issue(error.code, f"archive refused: {error}")))
        return
    collected.archives.append(archive)
    for name, issue in refused:
        collected.rejected.append(RejectedFile(f"{path.name}:{name}", issue))
    for entry in entries:
        collected.entries.append(
            Entry(
                str(path),
                entry.path,
                f"{path.name}:{entry.path}",
                entry.info.file_size,
                lambda archive=archive, entry=entry: read_entry(archive, entry),
            )
        )


def collect(sources: Sequence[str | Path], limits: ZipLimits | None = None) -> Collected:
    """Entries from every source, in a stable order. Zip archives stay open until `Collected.close()`."""
    limits = limits or ZipLimits()
    collected = Collected()
    for source in sources:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        if path.is_dir():
            _add_folder(path, collected)
        elif path.suffix.lower() == ".zip":
            _add_zip(path, collected, limits)
        else:
            # loose files form one group, matched by file name: "cat.png" finds "cat.txt" given beside it
            collected.entries.append(Entry("", PurePosixPath(path.name), path.name, path.stat().st_size, _reader(path)))
    kept = []
    for entry in collected.entries:
        if is_system_file(entry.path):
            collected.skipped.append(entry.label)
        else:
            kept.append(entry)
    collected.entries = kept
    return collected
