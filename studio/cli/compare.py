"""`studio compare`: a fixed-seed grid (checkpoints, LoRA weights, prompts, samplers, guidance) as one PNG."""

from __future__ import annotations

import argparse
import time

from studio.cli.generate import add_settings_arguments, engine_from_args, settings_from_args
from studio.generate.grid import AXIS_KINDS, Axis, best_checkpoint_axes, render_grid, save_grid
from studio.paths import data_dir


def register(commands) -> None:
    p = commands.add_parser(
        "compare",
        help="Render a fixed-seed comparison grid.",
        description="Render a fixed-seed comparison grid (one PNG with labelled axes). "
        "`studio compare --run RUN` answers 'which checkpoint is best?': the base model, then every saved step of the "
        "run across, its sample prompts down. Otherwise give axes as KIND=VALUES; kinds: "
        + "; ".join(f"{kind} ({text})" for kind, text in AXIS_KINDS.items())
        + ". Prompts on an axis are separated by |, other values by commas; checkpoint=RUN takes every saved step.",
    )
    p.add_argument("--run", default=None, help="A run id or folder: compare its checkpoints on its sample prompts.")
    p.add_argument("--x", default=None, metavar="KIND=VALUES", help="Columns, e.g. lora_weight=0,0.5,1.")
    p.add_argument("--y", default=None, metavar="KIND=VALUES", help="Rows, e.g. 'prompt=a red circle|a blue square'.")
    p.add_argument("--z", default=None, metavar="KIND=VALUES", help="Panels stacked below each other.")
    add_settings_arguments(p, prompt_required=False)
    p.add_argument("--out", default=None, help="The grid PNG (default: data/outputs/grids/grid-<time>.png).")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    if args.run:
        if args.x:
            raise ValueError("--run makes the axes itself (checkpoints x sample prompts); drop --x or --run")
        x, y, run_base = best_checkpoint_axes(args.run)
        if args.prompt:
            y = Axis("prompt", (args.prompt,))
        z = Axis.parse(args.z) if args.z else None
        explicit = {"model": args.model, "steps": args.steps}
        base = settings_from_args(args, prompt=y.values[0], **(run_base | {k: v for k, v in explicit.items() if v}))
    else:
        if not args.x:
            raise ValueError("give --run RUN, or at least --x KIND=VALUES")
        x = Axis.parse(args.x)
        y = Axis.parse(args.y) if args.y else None
        z = Axis.parse(args.z) if args.z else None
        prompt = args.prompt or next((a.values[0] for a in (x, y, z) if a and a.kind == "prompt"), None)
        if not prompt:
            raise ValueError("give --prompt (or a prompt axis)")
        base = settings_from_args(args, prompt=prompt)
    engine = engine_from_args(args)
    with tqdm(desc="grid", unit="image") as bar:

        def on_cell(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        grid = render_grid(engine, base, x, y, z, on_cell=on_cell)
    out = args.out or data_dir() / "outputs" / "grids" / f"grid-{time.strftime('%Y%m%d-%H%M%S')}.png"
    print(save_grid(grid, out))
    return 0
