"""Where one user's datasets and runs live, and the training jobs over them.

On a workstation there is one workspace, the data folder. In public mode (a shared Space) every visitor gets their
own folder under `visitors/`, so one visitor never sees another's images or runs, within caps on what one visitor
may store and train; see `PublicWorkspaces`.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

from studio import runs
from studio.adapters.stack import split_weight
from studio.data.dataset import Dataset, list_datasets, validate_name
from studio.data.validate import IMAGE_SUFFIXES
from studio.queue.worker import QueueWorker
from studio.train.jobs import JobManager, JobPool
from studio.train.methods import get

log = logging.getLogger(__name__)

VISITORS = "visitors"
LAST_SEEN = ".last-seen"  # touched when a visitor's workspace is used; its age decides the cleanup
VISITOR_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class PublicLimits:
    """What one visitor of a public studio may store and train, and how long an idle workspace is kept."""

    max_images: int = field(default=40, metadata={"help": "Images in one dataset."})
    max_workspace_bytes: int = field(default=200 * 2**20, metadata={"help": "Everything a visitor stores."})
    max_steps: int = field(default=400, metadata={"help": "Training steps of one run."})
    max_resolution: int = field(default=128, metadata={"help": "Training resolution (the pocket model draws 64)."})
    max_batch: int = field(default=16, metadata={"help": "Images per optimizer step (batch x accumulation)."})
    max_lora_rank: int = field(default=64, metadata={"help": "Rank of a LoRA (the pocket presets use 16)."})
    max_class_images: int = field(default=64, metadata={"help": "DreamBooth class images of one run."})
    max_sample_prompts: int = field(default=4, metadata={"help": "Sample prompts of one run."})
    max_sample_steps: int = field(default=50, metadata={"help": "Denoising steps of a sample or class image."})
    max_concurrent_runs: int = field(default=1, metadata={"help": "Training runs at once, all visitors together."})
    max_prompt_bytes: int = field(
        default=1000, metadata={"help": "Bytes of a prompt or negative prompt (77 tokens are about 300)."}
    )
    base_models: tuple[str, ...] = field(default=("pocket",), metadata={"help": "Base models a visitor may train."})
    captioners: tuple[str, ...] = field(
        default=("pocket", "template"), metadata={"help": "Captioners a visitor may use (others download models)."}
    )
    idle_hours: float = field(default=24.0, metadata={"help": "A workspace unused this long is deleted."})

    def __post_init__(self) -> None:
        for spec in fields(self):
            if spec.name.startswith("max_") and getattr(self, spec.name) < 1:
                raise ValueError(f"{spec.name} must be at least 1, got {getattr(self, spec.name)}")
        if self.idle_hours <= 0:
            raise ValueError(f"idle_hours must be positive, got {self.idle_hours}")

    def capped_settings(self, config) -> list[tuple[str, int, int]]:
        """(setting, value, cap) for every setting of a run (a RunConfig) that a visitor's cap bounds."""
        training, method = config.training, config.method_config
        capped = [
            ("resolution", training.resolution, self.max_resolution),
            (
                "batch_size x gradient_accumulation",
                training.batch_size * training.gradient_accumulation,
                self.max_batch,
            ),
            ("sample_prompts", len(training.sample_prompts), self.max_sample_prompts),
            ("sample_steps", training.sample_steps, self.max_sample_steps),
        ]
        # the method's own sizes, as its registry entry names them (LoRA: rank; DreamBooth: lora_rank ...)

        for name, cap in get(config.method).caps.items():
            capped.append((f"{config.method}.{name}", getattr(method, name), getattr(self, cap)))
        return capped


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink())


def upload_size(files: list[str | Path]) -> tuple[int, int]:
    """(images, bytes) an upload would add: plain files as they are, zips by their declared contents."""
    images = size = 0
    for file in map(Path, files):
        if file.suffix.lower() == ".zip" and zipfile.is_zipfile(file):
            with zipfile.ZipFile(file) as archive:
                entries = [e for e in archive.infolist() if not e.is_dir()]
            images += sum(Path(e.filename).suffix.lower() in IMAGE_SUFFIXES for e in entries)
            size += sum(e.file_size for e in entries)
        else:
            images += file.suffix.lower() in IMAGE_SUFFIXES
            size += file.stat().st_size if file.is_file() else 0
    return images, size


@dataclass
class Workspace:
    data_dir: Path
    limits: PublicLimits | None = None  # None: a private studio, no caps
    pool: JobPool | None = None  # shared with other workspaces when their training runs count together
    jobs: JobManager = field(init=False)
    queue: QueueWorker = field(init=False)  # the training queue, worked through by a server-side thread over jobs

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.jobs = JobManager(self.data_dir, pool=self.pool)
        self.queue = QueueWorker(self.data_dir, self.jobs)

    def check_upload(self, dataset: str, files: list[str | Path]) -> None:
        """Refuse an import that would take a dataset or this workspace over the public caps."""
        if self.limits is None:
            return

        folder = self.dataset_path(dataset)
        present = len(Dataset.load(folder).items) if (folder / "manifest.json").is_file() else 0
        images, size = upload_size(files)
        if present + images > self.limits.max_images:
            raise ValueError(
                f"a dataset here holds at most {self.limits.max_images} images "
                f"({present} already, {images} in this upload)"
            )
        used = folder_bytes(self.data_dir) if self.data_dir.is_dir() else 0
        if used + size > self.limits.max_workspace_bytes:
            raise ValueError(
                f"this upload ({size / 2**20:.1f} MB) would take your workspace over its "
                f"{self.limits.max_workspace_bytes / 2**20:.0f} MB; delete a run or dataset first"
            )

    def check_room(self) -> None:
        """Refuse to store more (a run, generated images) once a visitor's workspace is over its bytes."""
        if self.limits is not None and self.data_dir.is_dir():
            if folder_bytes(self.data_dir) > self.limits.max_workspace_bytes:
                raise ValueError("your workspace is full; delete a run or dataset first")

    def check_captioner(self, name: str) -> None:
        if self.limits is not None and name not in self.limits.captioners:
            raise ValueError(f"this public studio captions with {' or '.join(self.limits.captioners)} only")

    def check_training(self, config) -> None:
        """Refuse a run (a RunConfig) over the public caps: steps, size, rank..., base models, stored bytes, LoRAs
        from outside the workspace."""
        if self.limits is None:
            return

        training = config.training
        steps, base_model, base_loras = training.steps, training.base_model, training.base_loras
        for text in base_loras:  # a visitor may train on top of their own runs, never on another file of the server
            path = Path(split_weight(text)[0]).expanduser().resolve()
            if not path.is_relative_to(self.data_dir.resolve()):
                raise ValueError(f"base_loras: this public studio merges only your own runs' LoRAs, not {text!r}")
        if base_model not in self.limits.base_models:  # first: another model's presets are over the caps anyway
            raise ValueError(f"this public studio trains only {', '.join(self.limits.base_models)}, not {base_model!r}")
        if steps > self.limits.max_steps:
            raise ValueError(f"this public studio trains at most {self.limits.max_steps} steps a run, not {steps}")
        for name, value, cap in self.limits.capped_settings(config):
            if value > cap:
                raise ValueError(f"{name}: this public studio allows at most {cap}, not {value}")
        self.check_room()

    def start_training(self, config, dataset_choice: str | None) -> Path:
        """Start training `config` (a RunConfig) on a dataset of this workspace, within its caps; the run folder.
        Raises JobBusy while a run trains, ValueError for a missing dataset or a setting over the caps."""
        if not dataset_choice:
            raise ValueError("choose a dataset to train on (make one in the Dataset tab)")
        self.check_training(config)
        return self.jobs.start(config, self.training_source(dataset_choice))

    @property
    def datasets_root(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def runs_root(self) -> Path:
        return self.data_dir / "runs"

    def dataset_path(self, name: str) -> Path:
        """A dataset folder by name; the name is checked, so it never points outside the workspace."""
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

    def served_copy(self, path: str | Path) -> str:
        """The path to hand the page for a file of a workspace: a private studio serves its data folder as it is."""
        return str(path)


class PublicWorkspaces(Workspaces):
    """A workspace per visitor under `<data>/visitors/<visitor id>/`, with caps, and cleanup of idle ones.

    A visitor id is a random 128-bit hex string that the visitor's browser keeps; it is the only key to the
    workspace, like a session token. Handlers call `get()` with no argument: `current_session` (set by the front
    end) names the request being handled, and `bind` tells which visitor a session belongs to. A session nobody
    bound (an API client) gets a workspace of its own, derived from its session, for as long as it keeps it.
    """

    public = True
    TOUCH_EVERY = 60.0  # seconds between writes of a workspace's last-seen time
    SERVED_HOURS = 1.0  # a served copy is read by Gradio as the handler returns; an hour later it goes
    BIND_WAIT = 3.0  # seconds an event of a session not yet bound waits for the page's first event to bind it

    def __init__(
        self,
        data_dir: Path,
        limits: PublicLimits | None = None,
        current_session: Callable[[], str | None] = lambda: None,
        served_root: Path | None = None,
    ) -> None:
        self.root = Path(data_dir) / VISITORS
        # outside the data folder whatever its place: the page never serves the data folder by path (visitors.py)
        self.served_root = served_root or Path(tempfile.gettempdir()) / f"studio-served-{secrets.token_hex(8)}"
        self._served_secret = secrets.token_hex(16)
        self.limits = limits or PublicLimits()
        self.current_session = current_session
        self.pool = JobPool(self.limits.max_concurrent_runs)
        self._workspaces: dict[str, Workspace] = {}
        self._sessions: dict[str, str] = {}
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()
        self._bound = threading.Condition(self._lock)

    @staticmethod
    def new_visitor() -> str:
        return secrets.token_hex(16)

    @staticmethod
    def is_visitor(visitor: object) -> bool:
        return isinstance(visitor, str) and VISITOR_ID.fullmatch(visitor) is not None

    def bind(self, session: str, visitor: str) -> None:
        if not self.is_visitor(visitor):
            raise ValueError("not a visitor id")
        with self._bound:
            self._sessions[session] = visitor
            self._bound.notify_all()

    def visitor_of(self, session: str) -> str:
        """The visitor a session was bound to. A page binds its session in its first event, but a person can click
        before that event is through: wait for it a moment. A session still unbound then is an API client's,
        bound from now on to a visitor of its own (derived from the session, so the same for all its calls)."""
        import hashlib

        with self._bound:
            self._bound.wait_for(lambda: session in self._sessions, timeout=self.BIND_WAIT)
            if session not in self._sessions:
                self._sessions[session] = hashlib.sha256(f"session:{session}".encode()).hexdigest()[:32]
            return self._sessions[session]

    def get(self, visitor: str | None = None) -> Workspace:
        if visitor is None:
            session = self.current_session()
            if not session:
                raise ValueError("this request belongs to no visitor; reload the page")
            visitor = self.visitor_of(session)
        if not self.is_visitor(visitor):
            raise ValueError("not a visitor id")
        with self._lock:
            workspace = self._workspaces.get(visitor)
            if workspace is None:
                workspace = Workspace(self.root / visitor, limits=self.limits, pool=self.pool)
                self._workspaces[visitor] = workspace
        self._touch(visitor, workspace)
        return workspace

    def served_copy(self, path: str | Path) -> str:
        """A copy of a visitor's file for the page, in a folder of its own (a random name) under the system's temp
        folder. The page never serves the data folder by path, so that no visitor can fetch another's files by
        URL wherever the data folder is (a Space's persistent /data included); Gradio copies what a handler returns
        into its cache, under a name hashed from the content with a secret, and takes files only from the working
        or temp folder: this copy is what it takes."""
        import hashlib

        source = Path(path)
        found = source.stat()
        # one copy per version of a file (a live view re-sends its samples), under a name nobody can derive
        key = f"{self._served_secret}:{source.resolve()}:{found.st_mtime_ns}:{found.st_size}"
        folder = self.served_root / hashlib.sha256(key.encode()).hexdigest()[:32]
        target = folder / source.name
        if target.is_file():
            os.utime(folder)  # in use again: not cleaned up for another SERVED_HOURS
            return str(target)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{source.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.link(source, partial)  # the same disk: no copy
        except OSError:
            shutil.copyfile(source, partial)
        os.replace(partial, target)
        return str(target)

    def clean_served(self, now: float | None = None) -> int:
        """Delete served copies older than SERVED_HOURS; how many."""
        now = time.time() if now is None else now
        old = [
            folder
            for folder in (self.served_root.iterdir() if self.served_root.is_dir() else [])
            if now - folder.stat().st_mtime > self.SERVED_HOURS * 3600
        ]
        for folder in old:
            shutil.rmtree(folder, ignore_errors=True)
        return len(old)

    def _touch(self, visitor: str, workspace: Workspace) -> None:
        now = time.time()
        if now - self._touched.get(visitor, 0.0) < self.TOUCH_EVERY:
            return
        self._touched[visitor] = now
        workspace.data_dir.mkdir(parents=True, exist_ok=True)
        (workspace.data_dir / LAST_SEEN).touch()

    def cleanup(self, now: float | None = None) -> list[str]:
        """Delete the workspaces idle for longer than `limits.idle_hours` (none with a run training); their ids."""
        now = time.time() if now is None else now
        removed = []
        for folder in sorted(self.root.glob("*")) if self.root.is_dir() else []:
            if not folder.is_dir() or not self.is_visitor(folder.name):
                continue
            seen = folder / LAST_SEEN
            last = (seen if seen.is_file() else folder).stat().st_mtime
            if now - last < self.limits.idle_hours * 3600:
                continue
            if any(state.status == "running" for state in runs.list_runs(folder / "runs")):
                continue
            with self._lock:
                self._workspaces.pop(folder.name, None)
                self._touched.pop(folder.name, None)
                self._sessions = {s: v for s, v in self._sessions.items() if v != folder.name}
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
        if removed:
            log.info("removed %d idle visitor workspace(s)", len(removed))
        return removed

    def clean_periodically(self, every_seconds: float = 3600.0) -> threading.Thread:
        """Clean now, then every `every_seconds` in a daemon thread (it ends with the app)."""

        def loop() -> None:
            while True:
                try:
                    self.cleanup()
                    self.clean_served()
                except OSError:
                    log.exception("cleaning up idle workspaces failed")
                time.sleep(every_seconds)

        thread = threading.Thread(target=loop, name="studio-workspace-cleanup", daemon=True)
        thread.start()
        return thread
