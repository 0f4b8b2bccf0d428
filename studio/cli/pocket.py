"""`studio pocket ...`: the shapes world and the embedded pocket model."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path


def register(commands) -> None:
    p = commands.add_parser("pocket", help="Pocket model and shapes world tools.")
    sub = p.add_subparsers(dest="pocket_command", required=True, metavar="ACTION")

    from studio.pocket.pretrain_config import PretrainConfig

    pre = sub.add_parser("pretrain", help="Train the pocket model from nothing (resumable; ~1.5 h on 2 CPU cores).")
    for f in fields(PretrainConfig):
        pre.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    pre.set_defaults(handler=run_pretrain)

    ev = sub.add_parser("eval", help="Measure how often a model draws the prompted shape, colour and background.")
    ev.add_argument("--model", default="pocket", help="Model to judge (default: the shipped pocket model).")
    ev.add_argument("--seeds", type=int, default=1, help="Seeds per combination (96 combinations each).")
    ev.add_argument("--steps", type=int, default=25)
    ev.add_argument("--guidance", type=float, default=6.0)
    ev.set_defaults(handler=run_eval)

    wo = sub.add_parser("world", help="Write ground-truth shapes-world images with caption files.")
    wo.add_argument("--out", required=True, help="Folder for the PNGs and .txt captions.")
    wo.add_argument("--count", type=int, default=16)
    wo.add_argument("--seed", type=int, default=0)
    wo.add_argument("--size", type=int, default=64, help="Image side in pixels.")
    wo.add_argument("--shape", action="append", help="Shape(s) to draw (repeatable); default: the base shapes.")
    wo.add_argument("--color", action="append", help="Colour(s) (repeatable); default: the base colours.")
    wo.add_argument("--background", action="append", help="Background(s) (repeatable); default: the base ones.")
    wo.set_defaults(handler=run_world)


def run_pretrain(args: argparse.Namespace) -> int:
    from studio.pocket.pretrain import pretrain
    from studio.pocket.pretrain_config import PretrainConfig

    cfg = PretrainConfig(**{f.name: getattr(args, f.name) for f in fields(PretrainConfig)})
    metrics = pretrain(cfg)
    print(json.dumps({k: v for k, v in metrics.items() if k != "misses"}, indent=2))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from studio.models import load_pipeline
    from studio.pocket.quality import measure

    loaded = load_pipeline(args.model)
    loaded.pipe.set_progress_bar_config(disable=True)
    report = measure(loaded.pipe, seeds=tuple(range(args.seeds)), steps=args.steps, guidance=args.guidance)
    print(json.dumps(report.as_dict() | {"misses": report.misses[:10]}, indent=2))
    return 0


def run_world(args: argparse.Namespace) -> int:
    from studio.pocket import world

    vocabulary = {}
    if args.shape:
        vocabulary["shapes"] = tuple(args.shape)
    if args.color:
        vocabulary["colors"] = tuple(args.color)
    if args.background:
        vocabulary["backgrounds"] = tuple(args.background)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for index, scene in enumerate(world.scenes(args.count, args.seed, **vocabulary)):
        stem = out / f"{index:04d}"
        world.render(scene, args.size).save(stem.with_suffix(".png"))
        stem.with_suffix(".txt").write_text(scene.caption + "\n")
    print(f"wrote {args.count} images with captions to {out}")
    return 0
