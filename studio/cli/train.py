"""`studio train` and `studio runs list|show|rename|resume|cancel|export`: the training engine from a shell.

`studio train` runs in the foreground and is the same entry point the UI starts as a subprocess.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(commands) -> None:
    from studio.train.methods import methods

    known = methods()  # every registered method (studio/train/methods/registry.py)
    p = commands.add_parser(
        "train",
        help=f"Train on a dataset ({', '.join(spec.label for spec in known.values())}) from a preset or a config.",
        description="Train on a dataset from a preset or a config. Methods (a config's `method:`): "
        + "; ".join(f"{name}: {spec.label}" for name, spec in known.items()),
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help="A preset name from presets/ (e.g. lora-pocket) or a preset .yaml file.")
    source.add_argument("--config", help="A full config YAML (e.g. a run's config.yaml).")
    p.add_argument("--dataset", required=True, help="A dataset name, a prepared folder, or a folder of images + .txt.")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="Override a setting."
    )
    p.add_argument("--run-id", help="Name of the run folder (default: time, method and a random suffix).")
    p.add_argument("--name", help="What lists call the run (default: dataset and method, e.g. 'stars · LoRA').")
    p.add_argument("--no-progress", action="store_true", help="No progress bar (one line per event instead).")
    p.set_defaults(handler=run_train)

    runs = commands.add_parser("runs", help="List, inspect, rename, resume, cancel and export training runs.")
    sub = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    sub.add_parser("list", help="Every run with its name, trigger, status and step.").set_defaults(handler=run_list)
    rename = sub.add_parser("rename", help="Give a run a name (its id and files stay as they are).")
    rename.add_argument("run", help="Run id or run folder.")
    rename.add_argument("name", help="The new name, e.g. 'purple stars, 300 steps'.")
    rename.set_defaults(handler=run_rename)
    for name, handler, text in (
        ("show", run_show, "A run's state rebuilt from its folder."),
        ("resume", run_resume, "Continue a cancelled or interrupted run from its latest checkpoint."),
        ("cancel", run_cancel, "Ask a running run to stop (it saves a checkpoint first)."),
        ("export", run_export, "Export a run's latest checkpoint into its outputs/ folder."),
    ):
        action = sub.add_parser(name, help=text)
        action.add_argument("run", help="Run id or run folder.")
        if name == "show":
            action.add_argument("--json", action="store_true", help="Print the state as JSON.")
        if name == "resume":
            action.add_argument("--no-progress", action="store_true", help="No progress bar.")
        action.set_defaults(handler=handler)


def _threads() -> None:
    from studio.runtime import apply_thread_budget, thread_budget

    apply_thread_budget(thread_budget("train"))


class _Progress:
    """A tqdm bar fed by the run's events (or plain lines without a bar)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar = enabled, None

    def __call__(self, event: dict) -> None:
        kind = event["type"]
        if kind == "progress" and self.enabled:  # before the first step, e.g. DreamBooth drawing class images
            done = event["done"] == event["total"]
            print(f"\r{event['task']}: {event['done']}/{event['total']}", end="\n" if done else "", flush=True)
            return
        if not self.enabled:
            if kind != "step":
                print(json.dumps({k: v for k, v in event.items() if k != "time"}), flush=True)
            return
        from tqdm import tqdm

        if kind == "started":
            self.bar = tqdm(total=event["total_steps"], initial=event["step"], unit="step")
        elif kind == "step" and self.bar is not None:
            self.bar.update(event["step"] - self.bar.n)
            self.bar.set_postfix(loss=f"{event['loss']:.4f}", lr=f"{event['lr']:.2e}")
        elif self.bar is not None:
            detail = event.get("path") or event.get("reason") or event.get("message") or ""
            self.bar.write(f"{kind} at step {event.get('step', self.bar.n)} {detail}".rstrip())
            if kind in ("finished", "failed", "cancelled"):
                self.bar.close()


def run_train(args: argparse.Namespace) -> int:
    from studio.runs import runs_root
    from studio.runs.names import rename_run, run_label
    from studio.train.advice import report
    from studio.train.config import parse_overrides, resolve_config
    from studio.train.distributed import shared_run_dir
    from studio.train.start import create_run

    # the whole config is validated here, before any model is loaded
    config = resolve_config(args.preset, args.config, parse_overrides(args.overrides))
    for line in report(config, args.dataset, runs_root()):  # what the Train tab shows before Start
        print(line, flush=True)
    # under `accelerate launch` / torchrun every process runs this; only the main one creates the folder
    run_dir = shared_run_dir(lambda: create_run(config, args.dataset, run_id=args.run_id), config.training.device)
    if args.name:
        rename_run(run_dir, args.name)
    print(f"run {run_dir.name}: {run_label(run_dir)}  ({run_dir})", flush=True)
    return _train(run_dir, args.no_progress)


def _train(run_dir, no_progress: bool) -> int:
    from studio.train.loop import TrainingStopped
    from studio.train.start import run_training

    _threads()
    try:
        outcome = run_training(run_dir, on_event=_Progress(not no_progress))
    except TrainingStopped as stopped:
        print(f"run {run_dir.name} failed: {stopped}")
        return 1
    print(f"run {run_dir.name} {outcome}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from studio.runs import list_runs
    from studio.runs.names import run_label

    states = list_runs()
    if not states:
        print("no runs yet")
    for state in states:
        total = state.total_steps or "?"
        loss = f"  loss {state.losses[-1][1]:.4f}" if state.losses else ""
        print(f"{state.run_id}  {state.status:<11} step {state.last_step}/{total}{loss}  {run_label(state.folder)}")
    return 0


def run_rename(args: argparse.Namespace) -> int:
    from studio.runs import resolve_run
    from studio.runs.names import rename_run

    renamed = rename_run(resolve_run(args.run), args.name)
    print(f"run {renamed.run_id} is now called {renamed.label!r}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from studio.runs import replay, resolve_run
    from studio.runs.names import identity

    state = replay(resolve_run(args.run))
    who = identity(state.folder)
    data = {"run_id": state.run_id, "name": who.name, "trigger": who.trigger} | state.as_dict()
    data |= {"folder": str(state.folder), "exports": [e["path"] for e in state.exports]}
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            print(f"{key:12} {value}")
    return 0


def run_resume(args: argparse.Namespace) -> int:
    from studio.runs import resolve_run

    run_dir = resolve_run(args.run)
    from studio.runs import replay

    status = replay(run_dir).status
    if status in ("running", "finished"):
        raise ValueError(f"run {run_dir.name} is {status}; only a cancelled, failed or interrupted run resumes")
    print(f"resuming run {run_dir.name}", flush=True)
    return _train(run_dir, args.no_progress)


def run_cancel(args: argparse.Namespace) -> int:
    from studio.runs import replay, resolve_run, send_command

    run_dir = resolve_run(args.run)
    status = replay(run_dir).status
    if status != "running":
        raise ValueError(f"run {run_dir.name} is {status}, not running")
    send_command(run_dir, "cancel")
    print(f"asked run {run_dir.name} to stop; it saves a checkpoint at the end of the current step")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from studio.train.loop import TrainingStopped
    from studio.train.start import export_run

    _threads()
    try:
        paths = export_run(args.run)
    except TrainingStopped as stopped:
        print(f"studio runs export: {stopped}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0
