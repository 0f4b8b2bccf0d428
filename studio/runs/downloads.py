"""A finished run's files for a person: its exports as downloadable files, and deleting a run.

Exports are files (a kohya LoRA, an A1111 embedding) or folders (the diffusers LoRA folder, a DreamBooth pipeline);
a folder is offered as one zip, built once into `downloads/` inside the run and rebuilt when the export changes.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from studio.runs.folder import replay
from studio.runs.layout import CONFIG, DOWNLOADS


def download_files(run_dir: Path) -> list[Path]:
    """Each export of the run as one file: files as they are, folders zipped."""
    run_dir = Path(run_dir)
    files = []
    for export in replay(run_dir).exports:
        path = run_dir / export["path"]
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.append(_zipped(path, run_dir / DOWNLOADS / f"{path.name}.zip"))
    return files


def _zipped(folder: Path, target: Path) -> Path:
    newest = max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0)
    if target.is_file() and target.stat().st_mtime >= newest:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                archive.write(path, Path(folder.name) / path.relative_to(folder))
    partial.replace(target)
    return target


def delete_run(run_dir: Path, runs_root: Path) -> None:
    """Remove a run folder for good. A running run is refused (cancel it first); only folders under runs_root go."""
    run_dir, runs_root = Path(run_dir).resolve(), Path(runs_root).resolve()
    if run_dir.parent != runs_root or not (run_dir / CONFIG).is_file():
        raise ValueError(f"{run_dir.name} is not a run of this studio")
    status = replay(run_dir).status
    if status == "running":
        raise ValueError(f"run {run_dir.name} is still running; cancel it before deleting it")
    shutil.rmtree(run_dir)
