"""Scoring a LoRA run with its adapters merged into the base weights vs left as adapter layers (the Runs tab's
"Score checkpoints", `studio eval`): seconds and the scores, on the pocket model.

Trains the lora-pocket preset on the six purple stars (one checkpoint at the end), then scores the run three times:
merged, as adapter layers, merged again (the first includes warm-up). The scores must be the same; the ratio is
what merging saves.

    .venv/bin/python bench/score_speed.py

Run it alone on the machine: it measures time.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

from studio.runtime import prepare_environment

prepare_environment()


def main() -> None:
    from studio.evaluate import evaluate_run, render
    from studio.train.pocket_concept import train_concept

    with tempfile.TemporaryDirectory() as folder:
        trainer, _ = train_concept("lora-pocket", Path(folder), overrides={"checkpoint_every": "300"})
        merged = render.merged_adapters
        figures = {}
        for label, merging in (("merged", True), ("adapter layers", False), ("merged again", True)):
            render.merged_adapters = merged if merging else (lambda pipe: contextlib.nullcontext(0))
            start = time.perf_counter()
            card = evaluate_run(trainer.run_dir, seeds=2, save=False)
            seconds = time.perf_counter() - start
            scores = [(c.step, round(c.subject_fidelity, 3), round(c.prompt_fidelity, 3)) for c in card.checkpoints]
            figures[label] = seconds
            print(f"{label:15s} {seconds:6.1f} s   (step, subject, prompt): {scores}")
        render.merged_adapters = merged
        print(f"adapter layers / merged (second): {figures['adapter layers'] / figures['merged again']:.2f}x")


if __name__ == "__main__":
    main()
