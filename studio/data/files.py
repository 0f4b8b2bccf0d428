"""Atomic file writes: a reader sees the old file or the new one, never half of either; and writes that fail for
want of space or permission, told in one sentence that names the folder."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

# why a write can fail that the person can do something about, and what to do
STORAGE_ERRORS = {
    errno.ENOSPC: "its disk is full",
    errno.EDQUOT: "its disk quota is used up",
    errno.EROFS: "it is on a read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
SPACE_ADVICE = "free some space there, or move the data folder to a bigger disk (STUDIO_DATA_DIR)"
PERMISSION_ADVICE = "make it writable, or point STUDIO_DATA_DIR at a writable folder"


class WriteFailed(OSError):
    """A write the studio could not make (disk full, read-only, no permission), as one sentence naming the folder."""

    def __str__(self) -> str:
        return str(self.strerror)


def human_size(size: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{max(1, round(size / 2**10))} KB"


def free_space(folder: Path) -> int | None:
    """Bytes free on the disk that holds `folder` (or the nearest folder above it that exists)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def write_failure(error: BaseException, folder: Path | None = None, needed: int | None = None) -> WriteFailed | None:
    """`error` as a WriteFailed when it is about space or permission, else None. It names `folder` (the one the
    person knows: runs/, checkpoints/, a dataset's images/), else the folder of the file the error names;
    `needed`: bytes the write wanted, when known."""
    if isinstance(error, WriteFailed) and folder is None:
        return error
    if not isinstance(error, OSError) or error.errno not in STORAGE_ERRORS:
        return None
    if folder is None and error.filename:
        named = Path(error.filename)
        folder = named if named.is_dir() else named.parent
    folder = Path(folder) if folder is not None else Path.cwd()
    why, advice = STORAGE_ERRORS[error.errno], PERMISSION_ADVICE
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = SPACE_ADVICE
        free = free_space(folder)
        room = [f"{human_size(needed)} needed"] if needed else []
        room += [f"{human_size(free)} free"] if free is not None else []
        why += f" ({', '.join(room)})" if room else ""
    return WriteFailed(error.errno, f"cannot write in {folder}: {why}; {advice}", str(folder))


# how torch's and safetensors' writers report a failed write: not as an OSError, and not always with its cause
# (torch.save on a full disk: "[enforce fail at inline_container.cc:672] . unexpected pos ..." and nothing else)
LIBRARY_WRITE_ERRORS = {
    "Read-only file system": errno.EROFS,
    "ReadOnlyFilesystem": errno.EROFS,
    "Permission denied": errno.EACCES,
    "No space left on device": errno.ENOSPC,
    "StorageFull": errno.ENOSPC,
    "inline_container.cc": errno.ENOSPC,
    "PytorchStreamWriter failed writing": errno.ENOSPC,
}


def library_write_failure(error: BaseException, folder: Path, needed: int | None = None) -> WriteFailed | None:
    """A write failure of torch.save or safetensors (RuntimeError and the like) as WriteFailed, else None."""
    if isinstance(error, OSError):
        return write_failure(error, folder, needed)
    text = str(error)
    for words, code in LIBRARY_WRITE_ERRORS.items():
        if words in text:
            return write_failure(OSError(code, text), folder, needed)
    return None


@contextlib.contextmanager
def writing_in(folder: Path, needed: int | None = None) -> Iterator[None]:
    """Turn a write under `folder` that fails for want of space or permission into WriteFailed's sentence."""
    try:
        yield
    except Exception as error:
        failure = library_write_failure(error, folder, needed)  # a WriteFailed from deeper down names `folder` now
        if failure is None:
            raise
        raise failure from error


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # beside the target, so the final rename never crosses file systems; opened with "x" (not mkstemp) so
    # the file gets the user's usual permissions rather than owner-only
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        # the clean-up must never hide the real error (on a read-only disk it fails too)
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        failure = write_failure(error, path.parent, len(data))
        if failure is None or failure is error:
            raise
        raise failure from error


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: object) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
