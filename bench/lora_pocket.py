"""Taught concepts on the pocket model, judged on the whole prompt (issue 17's figures, one command).

For each `--preset` (default: the LoRA, DreamBooth-LoRA and Textual Inversion pocket presets): six purple stars on
three backgrounds, captioned "a purple zq on a <background> background", trained as a run trains, then every judged
prompt drawn at `--seeds` seeds and counted right only when the evaluator sees the right shape, colour *and*
background (studio/pocket/concept.py says what each figure asks). `--phrasing` also judges the base model (no
adapter) on paraphrased prompts and made-up words. `--sheet DIR` writes one labelled sheet per preset to look at.

    .venv/bin/python bench/lora_pocket.py --phrasing --sheet outputs/concept-sheets

Run it alone on the machine: the training time is one of the figures (goal: the LoRA preset in <= 60 s on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from studio.runtime import prepare_environment

prepare_environment()

GOALS = {"as trained": 7, "new background": 6, "new colour": 6, "drift": 7, "phrasing": 7}
DEFAULT_PRESETS = ("lora-pocket", "dreambooth-lora-pocket", "ti-object-pocket")


def goal_for(name: str) -> int:
    return GOALS["drift"] if name.startswith("drift") else GOALS.get(name, GOALS["phrasing"])


def print_figures(title: str, figures, seeds: int) -> None:
    print(title)
    for name, value in figures.as_dict().items():
        hits = figures.hits[name] * 8 / figures.totals[name]  # goals are written per 8 samples
        mark = "ok" if hits >= goal_for(name) else "below goal"
        print(f"  {name:24s} {value:>6s}   (goal >= {goal_for(name)} of 8: {mark})")


def train_and_judge(preset: str, args, scratch: Path) -> dict:
    import contextlib

    from studio.pocket.concept import (
        Concept,
        concept_probes,
        judge_probes,
        pipeline_drawer,
        sheet,
        write_concept_images,
    )
    from studio.runtime import apply_thread_budget, pocket_training_threads
    from studio.train.config import parse_overrides, resolve_config
    from studio.train.loop import prepare_trainer, set_train_mode, train
    from studio.train.start import create_run, put_trigger

    config = resolve_config(preset, overrides=parse_overrides(args.overrides))
    trigger = "zq"
    if config.method == "textual_inversion":
        trigger = config.method_config.placeholder_token  # its captions are templates around the new word
    concept = Concept(trigger=trigger)
    put_trigger(config, trigger)
    config.training.sample_every = 0
    if args.threads:
        apply_thread_budget(args.threads)
    threads = contextlib.nullcontext() if args.threads else pocket_training_threads(config.training.base_model, "cpu")
    folder = write_concept_images(scratch / preset / "concept", concept, side=config.training.resolution)
    started = time.perf_counter()
    trainer = prepare_trainer(create_run(config, folder, root=scratch / preset / "runs"))
    loaded = time.perf_counter()
    with threads:
        train(trainer)
    trained = time.perf_counter()
    set_train_mode(trainer, False)
    figures = judge_probes(pipeline_drawer(trainer.pipe, side=config.training.resolution), concept_probes(concept),
                           seeds=args.seeds)  # fmt: skip
    print_figures(
        f"{preset}: training {trained - loaded:.0f} s for {config.training.steps} steps "
        f"(from Start {trained - started:.0f} s; goal for the LoRA preset <= 60 s)",
        figures,
        args.seeds,
    )
    if args.sheet:
        print(f"  sheet: {sheet(figures, args.sheet / f'{preset}.png')}")
    return {"train_seconds": round(trained - loaded, 1), **figures.as_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", help="Preset(s) to train and judge (repeatable).")
    parser.add_argument("--phrasing", action="store_true", help="Also judge the base model on paraphrased prompts.")
    parser.add_argument("--no-train", action="store_true", help="Judge the phrasing only (with --phrasing).")
    parser.add_argument("--model", default="pocket", help="Base model for the phrasing probe.")
    parser.add_argument("--seeds", type=int, default=8, help="Seeds per judged prompt.")
    parser.add_argument("--threads", type=int, help="Compute threads (default: as a run trains).")
    parser.add_argument("--sheet", type=Path, help="Write a labelled sheet of every judged sample per preset here.")
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON here.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    results = {}
    if args.phrasing:
        from studio.models import load_pipeline
        from studio.pocket.concept import judge_probes, phrasing_probes, pipeline_drawer, sheet

        pipe = load_pipeline(args.model).pipe
        figures = judge_probes(pipeline_drawer(pipe), phrasing_probes(per_style=args.seeds))
        print_figures(f"phrasing, base model {args.model} (one sample per base prompt):", figures, args.seeds)
        if args.sheet:
            print(f"  sheet: {sheet(figures, args.sheet / 'phrasing.png')}")
        results["phrasing"] = figures.as_dict()
    if not args.no_train:
        with tempfile.TemporaryDirectory() as scratch:
            for preset in args.preset or DEFAULT_PRESETS:
                results[preset] = train_and_judge(preset, args, Path(scratch))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
