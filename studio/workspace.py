"""Where one user's datasets and runs live, and the training jobs over them.

On a workstation there is one workspace, the data folder. In public mode (a shared Space) every visitor gets their
own folder under `visitors/`, so one visitor never sees another's images or runs; see `Workspaces`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio.train.jobs import JobManager


@dataclass
class Workspace:
    data_dir: Path
    jobs: JobManager = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.jobs = JobManager(self.data_dir)

    @property
    def datasets_root(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def runs_root(self) -> Path:
        return self.data_dir / "runs"

    def dataset_path(self, name: str) -> Path:
        """A dataset folder by name; the name is checked, so it never points outside the workspace."""
        from studio.data.dataset import validate_name

        return self.datasets_root / validate_name(name)

    def training_source(self, choice: str) -> Path:
        """A dataset name, or "<name>/prepared/<variant>" for one of its prepared copies, as a folder here."""
        name, _, variant = choice.partition("/prepared/")
        folder = self.dataset_path(name)
        if variant:
            folder = folder / "prepared" / variant
            if "/" in variant or variant in (".", "..") or not (folder / "prepared.json").is_file():
                raise ValueError(f"dataset {name!r} has no prepared copy {variant!r}")
        elif not (folder / "manifest.json").is_file():
            raise ValueError(f"no dataset {name!r}; import images in the Dataset tab first")
        return folder

    def training_sources(self) -> list[tuple[str, str]]:
        """(label, choice) for every dataset and prepared copy, for a picker."""
        from studio.data.dataset import list_datasets

        out = []
        for name in list_datasets(self.datasets_root):
            out.append((name, name))
            prepared = self.datasets_root / name / "prepared"
            for variant in sorted(p.name for p in prepared.glob("*") if (p / "prepared.json").is_file()):
                out.append((f"{name} (prepared {variant})", f"{name}/prepared/{variant}"))
        return out

    def run_path(self, run_id: str) -> Path:
        """A run folder by id, only from this workspace's runs."""
        folder = self.runs_root / run_id
        if "/" in run_id or "\\" in run_id or run_id in ("", ".", "..") or not (folder / "config.yaml").is_file():
            raise ValueError(f"no run {run_id!r} here")
        return folder


class Workspaces:
    """One workspace for everyone (private mode)."""

    public = False

    def __init__(self, data_dir: Path) -> None:
        self.shared = Workspace(data_dir)

    def get(self, visitor: str | None = None) -> Workspace:
        return self.shared
