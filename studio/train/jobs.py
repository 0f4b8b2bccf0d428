"""Training jobs for a front end: start the CLI's training entry point in its own process, one job at a time.

The UI never trains in its own process. It resolves the config and writes the run folder (`create_run`, so a bad
setting or dataset is refused before anything starts), then starts `python -m studio runs resume <run>`: the
same entry point the CLI uses, which trains a freshly created run from step 0 and a stopped one from its latest
checkpoint. Everything a page shows is then read back from the run folder, so a reload, a second tab or a restarted
app sees the same run.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path

from studio import runs
from studio.runtime import thread_budget
from studio.train.config import RunConfig
from studio.train.start import create_run

log = logging.getLogger(__name__)

LOG_FILE = "train.log"  # the training process's stdout and stderr, inside its run folder


class JobBusy(ValueError):
    """A second start while a run is going: one training job at a time."""


def training_command(run_dir: Path) -> list[str]:
    """The argv of the training process (no shell: the run folder is one argument whatever its characters)."""
    return [sys.executable, "-m", "studio", "runs", "resume", str(run_dir), "--no-progress"]


def training_environment(data_dir: Path) -> dict[str, str]:
    """The training process shares the machine with the UI: it takes cores - 1 threads, the UI keeps one."""
    env = dict(os.environ)
    threads = str(thread_budget("train", sharing=True))
    env.update(
        STUDIO_DATA_DIR=str(data_dir),
        STUDIO_THREADS=threads,
        OMP_NUM_THREADS=threads,
        OMP_WAIT_POLICY="PASSIVE",
        PYTHONUNBUFFERED="1",
    )
    return env


class JobPool:
    """The training processes of several job managers together, at most `max_jobs` at once.

    A public studio gives every visitor their own job manager; the pool keeps all of them to what the machine can
    train at once. Only processes the managers started and that are still alive count.
    """

    def __init__(self, max_jobs: int = 1) -> None:
        self.max_jobs = max_jobs
        self.lock = threading.Lock()  # every manager of the pool starts jobs under this one lock
        self._managers: weakref.WeakSet[JobManager] = weakref.WeakSet()

    def join(self, manager: JobManager) -> None:
        self._managers.add(manager)

    def active(self) -> int:
        return sum(manager.live_processes() for manager in list(self._managers))


class JobManager:
    """Starts and follows training processes under one runs root; at most `max_jobs` run at once.

    A run started by someone else (the CLI, another app) counts too: the limit is read from the run folders,
    not from this object's memory. With a `pool`, the pool's limit applies as well.
    """

    def __init__(self, data_dir: Path, max_jobs: int = 1, pool: JobPool | None = None, detached: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.max_jobs = max_jobs
        self.pool = pool
        # detached: the training process gets a session of its own, so a Ctrl-C in the terminal of whoever started
        # it reaches only them (the queue runner then asks the run to stop, which saves a checkpoint first)
        self.detached = detached
        self._processes: dict[str, subprocess.Popen] = {}
        self._starting = 0  # starts past the busy check still writing their run folder; they count as running
        self._lock = pool.lock if pool else threading.Lock()
        if pool:
            pool.join(self)

    def live_processes(self) -> int:
        self._reap()
        return len(self._processes) + self._starting

    def pid(self, run_id: str) -> int | None:
        """The process id of a run this manager started and that is still alive."""
        self._reap()
        process = self._processes.get(run_id)
        return process.pid if process else None

    @property
    def runs_root(self) -> Path:
        return self.data_dir / "runs"

    def running(self) -> list[runs.RunState]:
        self._reap()
        return [
            state
            for state in runs.list_runs(self.runs_root)
            if state.status in ("running", "created") and self._counts_as_active(state)
        ]

    def _counts_as_active(self, state: runs.RunState) -> bool:
        # a created run is only active while its process (ours) is still loading the model
        return state.status == "running" or state.run_id in self._processes

    def start(self, config: RunConfig, dataset: str | Path, run_id: str | None = None) -> Path:
        """Write a new run folder and start training it. Raises JobBusy, or ValueError for a bad dataset."""
        # checked and counted under the lock, written outside it: the run folder (a prepared copy of the dataset)
        # takes seconds, and a second start waited that long for the lock before its 503 busy
        with self._lock:
            self._refuse_if_busy()
            self._starting += 1
        try:
            run_dir = create_run(config, dataset, run_id=run_id, root=self.runs_root)
        except BaseException:
            with self._lock:
                self._starting -= 1
            raise
        with self._lock:
            self._starting -= 1
            self._launch(run_dir)
        return run_dir

    def resume(self, run_dir: Path) -> None:
        with self._lock:
            status = runs.replay(run_dir).status
            if status in ("running", "finished"):
                raise ValueError(f"run {run_dir.name} is {status}; only a stopped run can be resumed")
            self._refuse_if_busy()
            self._launch(run_dir)

    def cancel(self, run_dir: Path) -> str:
        """Ask a run to stop. A run still loading (no step yet) is stopped at once; a training one saves first."""
        self._reap()
        state = runs.replay(run_dir)
        process = self._processes.get(run_dir.name)
        # ours and not "running": still loading (a resumed run shows its old status until its "started" event)
        if state.status != "running" and process is not None:
            process.terminate()
            process.wait(timeout=30)
            self._processes.pop(run_dir.name, None)
            runs.append_event(run_dir, "cancelled", step=state.last_step, reason="cancelled before the first step")
            return "cancelled before the first step"
        if state.status != "running":
            raise ValueError(f"run {run_dir.name} is {state.status}, not running")
        runs.send_command(run_dir, "cancel")
        return "stopping: the run saves a checkpoint at the end of the current step"

    def _refuse_if_busy(self) -> None:
        active = self.running()
        if active and len(active) + self._starting >= self.max_jobs:
            raise JobBusy(
                f"run {active[0].run_id} is still training; wait for it to finish or cancel it first "
                "(one training job at a time)"
            )
        if self._starting >= self.max_jobs:
            raise JobBusy("a run is starting; wait for it to finish or cancel it first (one training job at a time)")
        if self.pool and self.pool.active() >= self.pool.max_jobs:
            raise JobBusy(
                f"the studio is training {self.pool.active()} run(s) for other visitors, the most it trains at once "
                "(one training job at a time); try again in a few minutes"
            )

    def _launch(self, run_dir: Path) -> None:
        with open(run_dir / LOG_FILE, "ab") as output:
            process = subprocess.Popen(
                training_command(run_dir),
                env=training_environment(self.data_dir),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self.detached,
            )
        self._processes[run_dir.name] = process
        log.info("started training process %s for run %s", process.pid, run_dir.name)

    def _reap(self) -> None:
        """Collect processes that ended; one that died without a final event gets a `failed` event."""
        for run_id, process in list(self._processes.items()):
            code = process.poll()
            if code is None:
                continue
            if self._processes.pop(run_id, None) is None:
                continue  # another thread reaped it meanwhile
            run_dir = self.runs_root / run_id
            if runs.replay(run_dir).status in ("created", "running", "interrupted"):
                runs.append_event(run_dir, "failed", reason=f"{runs.PROCESS_DIED} {code}; see {LOG_FILE}")
                log.warning("training process for %s exited with %s without a final event", run_id, code)

    def wait(self, run_dir: Path, timeout: float | None = None) -> int | None:
        """Block until the run's process ends (tests, scripts); its exit code, or None if it is not ours."""
        process = self._processes.get(run_dir.name)
        if process is None:
            return None
        code = process.wait(timeout=timeout)
        self._reap()
        return code
