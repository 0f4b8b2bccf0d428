"""The app's queue worker: a server-side thread that runs the queue, so a page only starts, stops and watches it.

The thread holds the runner lock while it works, so `studio queue run` in a terminal and the app never process one
queue at once. What the page shows comes from the queue file and run folders, not from this object, so a reload,
a second tab or a restarted app shows the same queue.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from studio.queue.actions import request_processing
from studio.queue.runner import Progress, QueueRunner, RunnerLock
from studio.train.jobs import JobManager

log = logging.getLogger(__name__)


class QueueWorker:
    def __init__(self, data_dir: Path, jobs: JobManager, poll_seconds: float = 1.0) -> None:
        self.runner = QueueRunner(data_dir, jobs)
        self.lock = RunnerLock(data_dir)
        self.poll_seconds = poll_seconds
        self.last = Progress("stopped")
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def store(self):
        return self.runner.store

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> str:
        """Process the queue in the background until it is empty or stopped."""
        with self._start_lock:
            if self.busy():
                request_processing(self.store, True)  # a stop asked for meanwhile is taken back
                return "the queue is being processed"
            self.lock.acquire()  # RunnerBusy when a terminal's `studio queue run` has it
            try:
                request_processing(self.store, True)
            except ValueError:
                self.lock.release()
                raise
            self._thread = threading.Thread(target=self._work, name="studio-queue", daemon=True)
            self._thread.start()
        return "processing the queue: one training at a time, in order"

    def stop(self) -> str:
        request_processing(self.store, False)
        if not self.busy() and self.lock.holder() is None:
            return "the queue is stopped"
        return "stopping: the running entry saves a checkpoint and goes back in line, to resume next time"

    def resume_after_restart(self) -> bool:
        """At app start: a queue that was processing when the app went down continues (its runner died with it)."""
        if not self.store.load().processing:
            return False
        try:
            self.start()
        except ValueError as error:  # nothing left, or another process runs it
            log.info("the queue does not continue here: %s", error)
            return False
        return True

    def _work(self) -> None:
        try:
            self.last = self.runner.run(self._seen, self.poll_seconds)
        except Exception:
            log.exception("the queue worker stopped on an error")
            self.last = Progress("stopped", message="the queue worker stopped on an error; see the server log")
        finally:
            self.lock.release()

    def _seen(self, progress: Progress) -> None:
        self.last = progress
        if progress.message:
            log.info("queue: %s", progress.message)

    def describe(self) -> str:
        """One line for a page: is the queue processing, and what is it doing (from the file, so any app agrees)."""
        state = self.store.load()
        counts = {s: sum(e.status == s for e in state.entries) for s in ("queued", "running", "finished", "failed")}
        tally = f"{counts['queued']} queued, {counts['finished']} finished, {counts['failed']} failed"
        running = state.running()
        if running is not None:
            doing = "scoring" if running.phase == "scoring" else "training"
            what = f"{doing} entry {running.id} (run {running.run_id})"
            return f"{'Processing' if state.processing else 'Stopping'}: {what}. {tally}."
        if state.processing:
            return f"Processing: {self.last.message or 'starting the next entry'}. {tally}."
        return f"Stopped. {tally}."

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)
