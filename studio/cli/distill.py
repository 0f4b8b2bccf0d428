"""`studio distill lcm`: distil a model into an LCM-LoRA that samples in a few steps (resumable)."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields


def register(commands) -> None:
    from studio.distill.config import LcmDistillConfig

    p = commands.add_parser("distill", help="Distil a model for few-step sampling.")
    sub = p.add_subparsers(dest="distill_command", required=True, metavar="METHOD")
    lcm = sub.add_parser(
        "lcm",
        help="Latent consistency distillation into a LoRA (4-step sampling); rerun the same command to resume.",
    )
    for f in fields(LcmDistillConfig):
        flag = f"--{f.name.replace('_', '-')}"
        default = f.default_factory() if f.default is MISSING else f.default
        if isinstance(default, list):
            lcm.add_argument(flag, nargs="+", default=default, help=f.metadata["help"])
        else:
            lcm.add_argument(flag, type=type(default), default=default, help=f.metadata["help"])
    lcm.set_defaults(handler=run_lcm)


def run_lcm(args: argparse.Namespace) -> int:
    from studio.distill.config import LcmDistillConfig
    from studio.distill.lcm import distill

    cfg = LcmDistillConfig(**{f.name: getattr(args, f.name) for f in fields(LcmDistillConfig)})
    path = distill(cfg)
    print(f"LCM-LoRA written to {path}; use it with --lora {path.parent} (sampled with LCM, 4 steps, guidance 1)")
    return 0
