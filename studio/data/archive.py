"""Read a user's zip archive without trusting anything it says about itself.

A zip can try to write outside the target (`../x`, `/etc/x`, `C:\\x`), smuggle a symbolic link, or be a
"bomb" that inflates a few kilobytes into gigabytes. Each entry is checked before it is read, and reads are
capped by what was declared, so a lying header cannot inflate past the limits either. A bad entry is refused
with a reason and the rest of the archive is still used; only a whole-archive problem (the total declared size,
too many entries, not a zip at all) refuses the archive.
"""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from studio.data.issues import Issue

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ZipLimits:
    max_total_bytes: int = 4 * 2**30  # declared uncompressed size of the whole archive
    max_entry_bytes: int = 100 * 2**20  # one file, uncompressed (matches ImageRules.max_file_bytes)
    # images are already compressed (ratio ~1); a file shrunk over 100x is almost always padding or an attack
    max_ratio: float = 100.0
    ratio_applies_from: int = 2**20  # small files (a caption, a flat PNG) may compress very well; that is harmless
    max_entries: int = 50_000


class ArchiveRefused(ValueError):
    """The whole archive is refused; `code` is the issue code and the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ZipEntry:
    info: zipfile.ZipInfo
    path: PurePosixPath  # safe, relative, "/"-separated


def _is_link(info: zipfile.ZipInfo) -> bool:
    # Unix permissions live in the high 16 bits of external_attr; S_IFLNK marks a symbolic link
    return stat.S_ISLNK(info.external_attr >> 16)


def entry_path_problem(name: str) -> str | None:
    """Why `name` would land outside the extraction folder, or None when it is a plain relative path."""
    if "\x00" in name:
        return "its name contains a NUL byte"
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or _DRIVE.match(normalised):
        return "it has an absolute path"
    if any(part == ".." for part in normalised.split("/")):
        return "its path climbs out of the folder with '..'"
    return None


def scan_zip(archive: zipfile.ZipFile, limits: ZipLimits) -> tuple[list[ZipEntry], list[tuple[str, Issue]]]:
    """Entries safe to read, and (name, reason) for every refused entry. Raises ArchiveRefused for the archive."""
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise ArchiveRefused(
            "zip-too-many-entries", f"the archive has {len(infos)} entries, over the limit of {limits.max_entries}"
        )
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_total_bytes:
        raise ArchiveRefused(
            "zip-bomb",
            f"the archive declares {declared / 2**30:.1f} GiB uncompressed, over the "
            f"{limits.max_total_bytes / 2**30:.1f} GiB limit",
        )
    safe: list[ZipEntry] = []
    refused: list[tuple[str, Issue]] = []
    for info in infos:
        if info.is_dir():
            continue
        problem = entry_path_problem(info.filename)
        if problem:
            refused.append((info.filename, Issue("zip-path-escape", f"refused: {problem}")))
        elif _is_link(info):
            refused.append((info.filename, Issue("zip-link", "refused: it is a symbolic link, not a file")))
        elif info.flag_bits & 0x1:
            refused.append((info.filename, Issue("zip-encrypted", "refused: it is password-protected")))
        elif info.file_size > limits.max_entry_bytes:
            refused.append(
                (
                    info.filename,
                    Issue(
                        "zip-bomb",
                        f"refused: it inflates to {info.file_size / 2**20:.0f} MiB, over the "
                        f"{limits.max_entry_bytes / 2**20:.0f} MiB per-file limit",
                    ),
                )
            )
        elif info.file_size >= limits.ratio_applies_from and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            ratio = info.file_size / max(info.compress_size, 1)
            refused.append(
                (
                    info.filename,
                    Issue("zip-bomb", f"refused: compressed {ratio:.0f}:1, over the {limits.max_ratio:.0f}:1 limit"),
                )
            )
        else:
            parts = [p for p in info.filename.replace("\\", "/").split("/") if p not in ("", ".")]
            safe.append(ZipEntry(info, PurePosixPath(*parts)))
    return safe, refused


def read_entry(archive: zipfile.ZipFile, entry: ZipEntry) -> bytes:
    """The entry's bytes, never more than it declared (a header that lies about the size cannot inflate further)."""
    with archive.open(entry.info) as stream:
        data = stream.read(entry.info.file_size + 1)
    if len(data) > entry.info.file_size:
        raise zipfile.BadZipFile("the entry inflates past its declared size")
    return data


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveRefused("zip-corrupt", f"not a readable zip archive ({error})") from error
