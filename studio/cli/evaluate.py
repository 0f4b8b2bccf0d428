"""`studio eval RUN`: the scorecard of a run (every checkpoint, or one) as a table or JSON."""

from __future__ import annotations

import argparse
import json


def register(commands) -> None:
    p = commands.add_parser(
        "eval", help="Score a run's checkpoints: subject and prompt fidelity, prior preservation, overfitting."
    )
    p.add_argument("run", help="Run id or run folder.")
    p.add_argument("--checkpoint", type=int, metavar="STEP", help="Score only this checkpoint (default: all).")
    p.add_argument("--json", action="store_true", help="Print the scorecard as JSON.")
    p.add_argument("--seeds", type=int, default=2, help="Seeds per prompt (the same for every checkpoint).")
    p.add_argument("--steps", type=int, help="Denoising steps (default: the run's sample_steps).")
    p.add_argument("--trigger", help="The trigger word, when the run's dataset does not name one.")
    p.add_argument("--clip-model", help="Real models: a CLIP hub id or folder for CLIP-I / CLIP-T.")
    p.add_argument(
        "--dino-model", help="Real models, optional: a DINO ViT hub id or folder (e.g. facebook/dino-vits16)."
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda.")
    p.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from studio.evaluate.report import format_table
    from studio.evaluate.scorecard import evaluate_run
    from studio.runtime import apply_thread_budget, thread_budget

    apply_thread_budget(thread_budget("train"))
    card = evaluate_run(
        args.run,
        checkpoint=args.checkpoint,
        seeds=args.seeds,
        steps=args.steps,
        trigger=args.trigger,
        clip_model=args.clip_model,
        dino_model=args.dino_model,
        device=args.device,
    ).to_dict()
    if args.json:
        print(json.dumps(card, indent=2))
    else:
        print(format_table(card))
    return 0
