"""Pocket LoRA: does the `lora-pocket` preset teach a new shape (a star) from 5 images within about a minute?

Trains the preset on 5 rendered stars captioned "a zq on a <background> background", then generates
"a zq on a black background" for 20 seeds and prints the fraction the evaluator judges to be a star, the
training time, and each against the goal (>= 90 % after <= 60 s). Run alone on the machine:
`.venv/bin/python bench/lora_pocket.py` (the pocket model must be built: `studio pocket pretrain`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from studio.runtime import prepare_environment

prepare_environment()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shape", default="star")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    from studio.runtime import apply_thread_budget
    from studio.train.config import parse_overrides, resolve_config
    from studio.train.loop import prepare_trainer, train
    from studio.train.pocket_concept import shape_rate, write_concept_folder
    from studio.train.start import create_run

    apply_thread_budget(args.threads)
    config = resolve_config("lora-pocket", overrides=parse_overrides(args.overrides))
    config.training.sample_every = 0
    config.training.sample_prompts = ["a zq on a black background"]  # a plain folder has no trigger to fill in
    with tempfile.TemporaryDirectory() as scratch:
        folder = write_concept_folder(Path(scratch) / "concept", args.shape, "zq", side=config.training.resolution)
        run_dir = create_run(config, folder, root=Path(scratch) / "runs")
        trainer = prepare_trainer(run_dir)
        started = time.perf_counter()
        train(trainer)
        seconds = time.perf_counter() - started
        trainer.pipe.unet.eval()
        rate = shape_rate(
            trainer.pipe, "a zq on a black background", args.shape, range(args.seeds), config.training.resolution
        )
    print(f"training: {seconds:.1f} s for {config.training.steps} steps  (goal <= 60 s: ratio {seconds / 60:.2f})")
    print(f"{args.shape} rate: {rate:.0%} of {args.seeds} seeds  (goal >= 90 %: ratio {rate / 0.9:.2f})")


if __name__ == "__main__":
    main()
