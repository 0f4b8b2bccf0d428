"""`studio queue add|list|run|stop|remove|retry|show`: batches of trainings, one at a time, from a shell."""

from __future__ import annotations

import argparse
import json

from studio.evaluate.report import text_table
from studio.queue import QueueRunner, QueueStore, RunnerLock, add_entries, remove_entry, request_processing, retry_entry
from studio.queue.plan import dataset_folders, parse_sweeps
from studio.queue.table import QUEUE_HEADERS, format_sweep, queue_rows
from studio.runs import runs_root
from studio.train.config import parse_overrides, resolve_config


def register(commands) -> None:
    queue = commands.add_parser("queue", help="Queue trainings (sweeps, one per dataset folder) and run them in turn.")
    sub = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")

    add = sub.add_parser("add", help="Queue a training, a sweep of settings or one training per dataset folder.")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help="A preset name from presets/ (e.g. lora-pocket) or a preset .yaml file.")
    source.add_argument("--config", help="A full config YAML (e.g. a run's config.yaml).")
    datasets = add.add_mutually_exclusive_group(required=True)
    datasets.add_argument(
        "--dataset", dest="datasets", action="append", metavar="DATASET",
        help="A dataset name or folder (as `studio train` takes); repeat for one entry per dataset.",
    )  # fmt: skip
    datasets.add_argument("--folders", metavar="PARENT", help="One entry per sub-folder of PARENT (a folder batch).")
    add.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="A setting.")
    add.add_argument(
        "--sweep", dest="sweeps", action="append", default=[], metavar="KEY=V1,V2",
        help="Queue one training per value (several --sweep: every combination). Keys as --set takes them.",
    )  # fmt: skip
    scoring = add.add_mutually_exclusive_group()
    scoring.add_argument("--eval", dest="evaluate", action="store_const", const=True, help="Score every run.")
    scoring.add_argument("--no-eval", dest="evaluate", action="store_const", const=False, help="Do not score.")
    add.add_argument("--eval-seeds", type=int, default=1, help="Seeds per prompt for the scorecard (default 1).")
    add.add_argument("--eval-steps", type=int, default=10, help="Denoising steps for the scorecard (default 10).")
    add.set_defaults(handler=run_add)

    listing = sub.add_parser("list", help="Every entry with its status, run, step and loss.")
    listing.add_argument("--json", action="store_true", help="Print the entries as JSON.")
    listing.set_defaults(handler=run_list)
    run = sub.add_parser("run", help="Train the queued entries in order until none is left (Ctrl-C stops cleanly).")
    run.add_argument("--no-progress", action="store_true", help="Plain lines instead of a progress bar.")
    run.set_defaults(handler=run_run)
    sub.add_parser("stop", help="Ask whoever processes the queue to stop.").set_defaults(handler=run_stop)
    for name, handler, text in (
        ("remove", run_remove, "Take an entry out (a running one is asked to stop first)."),
        ("retry", run_retry, "Queue a failed or cancelled entry again (it resumes its run)."),
    ):
        action = sub.add_parser(name, help=text)
        action.add_argument("entry", type=int, help="The entry's number (see `studio queue list`).")
        action.set_defaults(handler=handler)
    show = sub.add_parser("show", help="A sweep's entries side by side: settings, final loss, scorecard.")
    show.add_argument("sweep", help="A sweep id (e.g. sweep-1; see `studio queue list`).")
    show.set_defaults(handler=run_show)


def _store():
    return QueueStore(runs_root().parent)


def run_add(args: argparse.Namespace) -> int:
    sweeps = parse_sweeps(args.sweeps)
    overrides = parse_overrides(args.overrides)
    both = sorted(set(sweeps) & set(overrides))
    if both:
        raise ValueError(f"{', '.join(both)} is given in both --set and --sweep; keep one")
    base = resolve_config(args.preset, args.config, overrides)
    datasets = dataset_folders(args.folders) if args.folders else args.datasets
    added = add_entries(_store(), base, datasets, sweeps, args.evaluate, args.eval_seeds, args.eval_steps)
    print(f"queued {len(added)} entr{'y' if len(added) == 1 else 'ies'} as {added[0].sweep}:")
    for entry in added:
        settings = ", ".join(f"{k}={v}" for k, v in entry.swept.items())
        print(f"  #{entry.id}  {entry.dataset}  {settings}".rstrip())
    return 0


def run_list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    store = _store()
    state = store.load()
    if args.json:
        print(json.dumps({"processing": state.processing, "entries": [asdict(e) for e in state.entries]}, indent=2))
    elif not state.entries:
        print("the queue is empty")
    else:
        print(text_table(QUEUE_HEADERS, queue_rows(state, store.data_dir / "runs")))
    return 0


class _Printer:
    """Progress of `queue run`: a tqdm bar per training entry, and a line for each thing that happens."""

    def __init__(self, bars: bool) -> None:
        self.bars, self.bar, self.bar_key, self.last_message = bars, None, None, ""

    def __call__(self, progress) -> None:
        entry = progress.entry
        if self.bars and progress.state == "training" and entry and progress.total_steps:
            key = (entry.id, entry.run_id)
            if key != self.bar_key:
                self.close()
                from tqdm import tqdm

                label = ", ".join(f"{k}={v}" for k, v in entry.swept.items()) or entry.run_id
                self.bar = tqdm(total=progress.total_steps, initial=progress.step, desc=f"#{entry.id} {label}")
                self.bar_key = key
            self.bar.update(progress.step - self.bar.n)
            if progress.loss is not None:
                self.bar.set_postfix(loss=f"{progress.loss:.4f}")
        if progress.message and progress.message != self.last_message:
            self.last_message = progress.message
            self.say(progress.message)

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar, self.bar_key = None, None


def run_run(args: argparse.Namespace) -> int:
    store = _store()
    lock = RunnerLock(store.data_dir)
    lock.acquire()
    printer = _Printer(not args.no_progress)
    runner = QueueRunner(store.data_dir)  # training processes detached: a Ctrl-C here reaches only this runner
    interrupted = False
    try:
        request_processing(store, True)
        try:
            runner.run(printer)
        except KeyboardInterrupt:
            interrupted = True
            printer.say(
                "stopping: the running entry saves a checkpoint and goes back in line (Ctrl-C again: leave now)"
            )
            request_processing(store, False)
            runner.run(printer)
    finally:
        printer.close()
        lock.release()
    counts: dict[str, int] = {}
    for entry in store.load().entries:
        counts[entry.status] = counts.get(entry.status, 0) + 1
    print("queue: " + (", ".join(f"{n} {status}" for status, n in counts.items()) or "empty"))
    return 130 if interrupted else 0


def run_stop(args: argparse.Namespace) -> int:
    request_processing(_store(), False)
    print("asked the queue to stop; the running entry saves a checkpoint and resumes when the queue runs again")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    print(remove_entry(_store(), args.entry))
    return 0


def run_retry(args: argparse.Namespace) -> int:
    print(retry_entry(_store(), args.entry))
    return 0


def run_show(args: argparse.Namespace) -> int:
    store = _store()
    print(format_sweep(args.sweep, store.load().sweep(args.sweep), store.data_dir / "runs"))
    return 0
