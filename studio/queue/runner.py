"""Working through the queue: one entry at a time, each trained by the job machinery in its own process.

The runner holds no state that the disk does not: every `tick()` reads the queue file and the running entry's run
folder, decides, and writes the entry back. So a runner that dies (Ctrl-C twice, a killed app) loses nothing; the
next one picks up where the files say it is:

- a queued entry stays queued;
- a running entry whose training process still lives is followed again (it was started detached or outlived its
  app);
- one whose process died mid-run is resumed from its run folder's last checkpoint (the engine resumes exactly),
  at most MAX_RESUMES times, then marked failed with the reason.

Stopping is a flag in the queue file (`processing`), so any front end can stop any runner: the runner asks the
training run to cancel (it saves a checkpoint at the end of its step) and puts the entry back as queued, to resume
from that checkpoint next time. A run cancelled from elsewhere (the Train tab, `studio runs cancel`) marks its
entry cancelled and the queue moves on.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio import runs
from studio.evaluate.report import SCORECARD
from studio.queue.store import QueueEntry, QueueStore
from studio.train.config import config_from_dict
from studio.train.jobs import JobBusy, JobManager, training_environment

log = logging.getLogger(__name__)

MAX_RESUMES = 3  # a training process that keeps dying is a bug to report, not to retry forever
EVAL_LOG = "eval.log"
RUNNER_FILE = ".queue-runner.json"


@dataclass
class Progress:
    """What one tick saw; `state`: training, scoring, waiting, empty (nothing left) or stopped."""

    state: str
    entry: QueueEntry | None = None
    message: str = ""
    step: int = 0
    total_steps: int | None = None
    loss: float | None = None

    @property
    def done(self) -> bool:
        return self.state in ("empty", "stopped")


class RunnerBusy(ValueError):
    """Another process works through this queue already."""


class RunnerLock:
    """One runner per queue: a file naming the process that holds it; a dead holder's file is taken over."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / RUNNER_FILE

    def holder(self) -> int | None:
        try:
            pid = int(json.loads(self.path.read_text(encoding="utf-8"))["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return pid if runs.process_alive(pid) else None

    def acquire(self) -> None:
        holder = self.holder()
        if holder is not None:
            raise RunnerBusy(
                f"the queue is already being processed by process {holder} (the app or `studio queue run`); "
                "stop it there first"
            )
        self.path.unlink(missing_ok=True)  # a dead holder's file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: of two runners starting at once, one gets the file
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise RunnerBusy("another runner started processing the queue just now") from None
        with os.fdopen(descriptor, "w") as stream:
            json.dump({"pid": os.getpid(), "since": time.time()}, stream)

    def release(self) -> None:
        if self.holder() == os.getpid():
            self.path.unlink(missing_ok=True)


def eval_command(run_dir: Path, entry: QueueEntry) -> list[str]:
    """`studio eval` in its own process: the scorecard loads a pipeline, which the UI process must not do."""
    command = [sys.executable, "-m", "studio", "eval", str(run_dir), "--seeds", str(entry.eval_seeds)]
    return command + (["--steps", str(entry.eval_steps)] if entry.eval_steps else [])


class QueueRunner:
    """Follows the running entry, or starts the next queued one; `run()` ticks until the queue is done."""

    def __init__(self, data_dir: Path, jobs: JobManager | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.store = QueueStore(self.data_dir)
        self.jobs = jobs or JobManager(self.data_dir, detached=True)
        self._scoring: subprocess.Popen | None = None
        self._stop_sent: set[str] = set()

    @property
    def runs_root(self) -> Path:
        return self.data_dir / "runs"

    def run(self, on_progress: Callable[[Progress], None] = lambda _: None, poll_seconds: float = 1.0) -> Progress:
        """Tick until the queue is empty or stopped (`request_processing` turns processing on and off)."""
        while True:
            progress = self.tick()
            on_progress(progress)
            if progress.done:
                return progress
            time.sleep(poll_seconds)

    def tick(self) -> Progress:
        state = self.store.load()
        entry = state.running()
        if entry is not None:
            return self._follow(entry, state.processing)
        if not state.processing:
            return Progress("stopped", message="the queue is stopped")
        entry = state.next_queued()
        if entry is None:
            with self.store.update() as latest:  # nothing left: processing ends (unless something came in)
                if latest.next_queued() is None and latest.running() is None:
                    latest.processing = False
            return Progress("empty", message="the queue is empty")
        return self._start(entry)

    # ------------------------------------------------------------------ starting

    def _start(self, entry: QueueEntry) -> Progress:
        busy = self.jobs.running()
        if busy:
            return Progress("waiting", entry, f"waiting for run {busy[0].run_id} to finish (one training at a time)")
        run_id = entry.run_id or runs.new_run_id(entry.method)
        # the run id is written before the folder exists: a runner that dies in between finds no folder and requeues
        entry = self.store.change(entry.id, status="running", phase="training", run_id=run_id, pid=None, reason=None)
        if entry is None:
            return Progress("waiting", message="the entry was removed")
        run_dir = self.runs_root / run_id
        try:
            resumed = (run_dir / runs.CONFIG).is_file()
            if resumed:
                if runs.replay(run_dir).status == "finished":
                    return self._finished(entry, run_dir)
                self.jobs.resume(run_dir)
            else:
                self.jobs.start(config_from_dict(entry.config), entry.dataset, run_id=run_id)
        except JobBusy as busy:
            self.store.change(entry.id, status="queued", pid=None)
            return Progress("waiting", entry, str(busy))
        except (ValueError, FileNotFoundError, OSError) as error:
            self.store.change(entry.id, status="failed", pid=None, reason=str(error))
            return Progress("waiting", entry, f"entry {entry.id} failed: {error}")
        entry = self.store.change(entry.id, pid=self.jobs.pid(run_id)) or entry
        started = "resumed from its last checkpoint" if resumed else "started"
        return Progress("training", entry, f"entry {entry.id}: run {run_id} {started}")

    # ------------------------------------------------------------------ following

    def _follow(self, entry: QueueEntry, processing: bool) -> Progress:
        run_dir = self.runs_root / str(entry.run_id)
        if entry.phase == "scoring":
            return self._follow_scoring(entry, run_dir, processing)
        if not (run_dir / runs.CONFIG).is_file():  # marked running, but the folder was never written
            self.store.change(entry.id, status="queued", pid=None)
            return Progress("waiting", entry, f"entry {entry.id} never started; queued again")
        ours = self.jobs.pid(run_dir.name)  # also reaps our process if it ended (a silent death -> failed)
        run = runs.replay(run_dir)
        progress = Progress(
            "training", entry, "", run.last_step, run.total_steps, run.losses[-1][1] if run.losses else None
        )
        if run.status == "finished":
            return self._finished(entry, run_dir)
        # a process that lives is followed whatever the folder says: one just resumed has not written "started" yet
        alive = run.status == "running" or ours is not None or runs.process_alive(entry.pid)
        if alive:
            if not processing:
                self._ask_to_stop(run_dir, ours is not None)
                progress.message = f"stopping entry {entry.id} (it saves a checkpoint first)"
            return progress
        # a failure the training reported is final; a process that died without a word is resumed like any death
        if run.status == "failed" and not (run.reason or "").startswith(runs.PROCESS_DIED):
            self.store.change(entry.id, status="failed", pid=None, reason=run.reason)
            progress.message = f"entry {entry.id} failed: {run.reason}"
            return progress
        # a Ctrl-C that reached the training process too (the app's terminal) is a death like any other: resume it
        if run.status == "cancelled" and run.reason != runs.KEYBOARD_INTERRUPT:
            if processing and run_dir.name not in self._stop_sent:
                reason = f"the run was cancelled outside the queue at step {run.last_step}"
                self.store.change(entry.id, status="cancelled", pid=None, reason=run.reason or reason)
                progress.message = f"entry {entry.id} cancelled"
            else:  # we asked: back in line, to resume from the checkpoint the run saved while stopping
                self._requeue(entry, f"stopped at step {run.last_step}; resumes from its last checkpoint")
                progress.message = f"entry {entry.id} stopped at step {run.last_step}; it resumes next time"
            return progress
        # the training process died, with its runner (a killed app) or alone: resume it from its last checkpoint
        if not processing:
            self._requeue(entry, f"its process died at step {run.last_step}; resumes from its last checkpoint")
            return progress
        if entry.resumes >= MAX_RESUMES:
            reason = f"the training process died {entry.resumes + 1} times; last at step {run.last_step}"
            self.store.change(entry.id, status="failed", pid=None, reason=reason)
            progress.message = f"entry {entry.id} failed: {reason}"
            return progress
        try:
            self.jobs.resume(run_dir)
        except JobBusy as busy:
            progress.state, progress.message = "waiting", str(busy)
            return progress
        self.store.change(entry.id, pid=self.jobs.pid(run_dir.name), resumes=entry.resumes + 1)
        progress.message = (
            f"entry {entry.id}: its process had died; resumed run {run_dir.name} from step {run.last_step}"
        )
        return progress

    def _ask_to_stop(self, run_dir: Path, ours: bool) -> None:
        if run_dir.name in self._stop_sent:
            return
        self._stop_sent.add(run_dir.name)
        if ours:
            self.jobs.cancel(run_dir)  # a run still loading is stopped at once
        else:
            runs.send_command(run_dir, "cancel")  # the loop also reads a cancel sent while its model loads

    def _requeue(self, entry: QueueEntry, reason: str) -> None:
        self.store.change(entry.id, status="queued", phase="training", pid=None, reason=reason)
        self._stop_sent.discard(str(entry.run_id))

    # ------------------------------------------------------------------ scoring

    def _finished(self, entry: QueueEntry, run_dir: Path) -> Progress:
        if not entry.evaluate or (run_dir / "eval" / SCORECARD).is_file():
            self.store.change(entry.id, status="finished", phase="training", pid=None)
            return Progress("training", entry, f"entry {entry.id} finished (run {run_dir.name})")
        with open(run_dir / EVAL_LOG, "ab") as output:
            self._scoring = subprocess.Popen(
                eval_command(run_dir, entry),
                env=training_environment(self.data_dir),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self.jobs.detached,
            )
        self.store.change(entry.id, phase="scoring", pid=self._scoring.pid)
        return Progress("scoring", entry, f"entry {entry.id}: computing the scorecard of run {run_dir.name}")

    def _follow_scoring(self, entry: QueueEntry, run_dir: Path, processing: bool) -> Progress:
        ours = self._scoring if self._scoring and self._scoring.pid == entry.pid else None
        running = ours.poll() is None if ours else runs.process_alive(entry.pid)
        if running and processing:
            return Progress("scoring", entry, f"entry {entry.id}: computing the scorecard of run {run_dir.name}")
        if running:  # stopped while scoring: the scorecard is computed when the queue runs again
            if ours:
                ours.terminate()
                ours.wait(timeout=30)
            self._requeue(entry, "trained; its scorecard is computed when the queue runs again")
            return Progress("scoring", entry, f"entry {entry.id}: scorecard stopped")
        self._scoring = None
        if (run_dir / "eval" / SCORECARD).is_file():
            self.store.change(entry.id, status="finished", phase="training", pid=None)
            return Progress("training", entry, f"entry {entry.id} finished and scored (run {run_dir.name})")
        if ours is None and processing and entry.resumes < MAX_RESUMES:  # died with its runner: score again
            entry = self.store.change(entry.id, resumes=entry.resumes + 1) or entry
            return self._finished(entry, run_dir)
        reason = f"trained, but no scorecard: `studio eval` failed (see {run_dir.name}/{EVAL_LOG})"
        self.store.change(entry.id, status="finished", phase="training", pid=None, reason=reason)
        return Progress("training", entry, f"entry {entry.id} finished; {reason}")
