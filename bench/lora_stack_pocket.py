"""Stacked LoRAs on the pocket model, judged on the whole prompt (issue 18's figures, one command).

Three LoRAs are trained as a user trains them (`--preset`, default `lora-pocket`): two subjects the pocket model
never saw, each with its own trigger word (six purple stars "zq", six green hearts "vx", each on three
backgrounds), and a style (the base shapes in pink, a colour it never drew, captioned "a pink circle on ...").
Then, with every LoRA of a case switched on at weight 1 through the studio's own generation engine (fused, as the
Playground does), each judged prompt is drawn at `--seeds` seeds and counted right only when the evaluator sees
the right shape, colour *and* background:
- A / B: each subject's own prompt, as trained and on the background it never saw, with both subjects on;
- drift: base prompts without either trigger, with both subjects on;
- subject + style: "a pink zq on a black background" with the star and the pink LoRA on;
- alone: each prompt with only its own LoRA, the reference a stack is measured against.
Each `--stacking` mode (the engine's `stacking` setting) is judged in turn; `--sheet DIR` writes one sheet per mode.

    .venv/bin/python bench/lora_stack_pocket.py --runs outputs/stack-runs --sheet outputs/stack-sheets

`--runs DIR` keeps the trained runs there and reuses them on the next call (training is ~1 minute each).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from studio.runtime import prepare_environment

prepare_environment()

GOAL = 6  # of 8, per judged prompt (issue 18)


def concepts():
    from studio.pocket.concept import Concept

    star = Concept()  # purple star "zq" on black / white / gray
    heart = Concept(shape="heart", color="green", trigger="vx")
    return star, heart


def write_style_images(folder: Path) -> Path:
    """The base shapes in pink on the base backgrounds, captioned with the colour word: "a pink circle on ..."."""
    from studio.pocket.datasets import write_color_folder

    return write_color_folder(folder, "pink", trigger="pink", count=8)


def train_run(preset: str, name: str, folder_writer, trigger: str, root: Path, overrides: list[str]) -> Path:
    """Train `preset` on the folder `folder_writer(path)` writes, as a run called `name`; reuse a finished one."""
    from studio import runs
    from studio.train.config import parse_overrides, resolve_config
    from studio.train.start import create_run, put_trigger, run_training

    run_dir = root / "runs" / name
    if run_dir.is_dir() and runs.replay(run_dir).status == "finished":
        print(f"{name}: reusing {run_dir}")
        return run_dir
    config = resolve_config(preset, overrides=parse_overrides(overrides))
    put_trigger(config, trigger)
    config.training.sample_every = 0
    folder = folder_writer(root / "data" / name)
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    started = time.perf_counter()
    run_dir = create_run(config, folder, run_id=name, root=root / "runs")
    status = run_training(run_dir)
    print(f"{name}: {status} in {time.perf_counter() - started:.0f} s ({preset}, {config.training.steps} steps)")
    if status != "finished":
        raise SystemExit(f"training {name} did not finish: {status}")
    return run_dir


def probes_for(star, heart):
    """(case, probe) pairs: which LoRAs a probe is drawn with is the case's business."""
    from dataclasses import replace

    from studio.pocket.concept import DRIFT_PROMPTS, Probe, concept_probes
    from studio.pocket.world import caption_for

    def named(prefix, probe):
        return replace(probe, name=f"{prefix}: {probe.name}")

    cases = []
    for prefix, concept in (("A star", star), ("B heart", heart)):
        for probe in concept_probes(concept)[:2]:  # as trained, new background
            cases.append(("subjects", prefix, named(prefix, probe)))
    for shape, color, background in DRIFT_PROMPTS:
        cases.append(("subjects", None, Probe(f"drift: {color} {shape}", caption_for(shape, color, background),
                                               shape, color, background)))  # fmt: skip
    cases.append(("style", "S pink", Probe("S pink: alone prompt", "a pink circle on a black background",
                                           "circle", "pink", "black")))  # fmt: skip
    cases.append(("style", None, Probe("A+S: a pink zq", f"a pink {star.trigger} on a black background",
                                       star.shape, "pink", "black")))  # fmt: skip
    return cases


def engine_drawer(engine, loras: list[dict], stacking: str, steps: int = 20):
    """`draw` for `judge_probes` through the studio's engine: consecutive seeds of one prompt in one call."""
    from studio.generate import GenerationSettings

    def draw(prompts: list[str], seeds: list[int]) -> list:
        images, start = [], 0
        while start < len(prompts):
            end = start
            while end < len(prompts) and prompts[end] == prompts[start] and seeds[end] == seeds[start] + end - start:
                end += 1
            settings = GenerationSettings(prompt=prompts[start], seed=seeds[start], count=end - start, steps=steps,
                                          loras=loras, fuse=True, stacking=stacking)  # fmt: skip
            images += [result.image for result in engine.generate(settings)]
            start = end
        return images

    return draw


def judge_mode(engine, mode: str, runs: dict[str, Path], cases, seeds: int, weights: dict[str, float]):
    from studio.pocket.concept import Figures, judge_probes

    figures = Figures()
    stacks = {
        "subjects": [runs["A star"], runs["B heart"]],
        "style": [runs["A star"], runs["S pink"]],
    }
    for stack, own, probe in cases:
        if mode == "alone":
            paths = [runs[own]] if own else []
            if probe.name.startswith("A+S"):
                paths = stacks["style"]  # the combined prompt has no "alone": drawn stacked, for reference
        else:
            paths = stacks[stack]
        loras = [{"path": str(p), "weight": weights.get(p.name, 1.0)} for p in paths]
        judge_probes(engine_drawer(engine, loras, "sum" if mode == "alone" else mode), [probe], seeds, figures)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lora-pocket", help="Preset the three LoRAs are trained with.")
    parser.add_argument("--style-steps", default="200", help="Training steps of the pink style LoRA.")
    parser.add_argument("--stacking", action="append", help="Stacking mode(s) to judge (default: alone, sum, scoped).")
    parser.add_argument("--runs", type=Path, help="Keep the trained runs here and reuse them (default: a temp dir).")
    parser.add_argument("--seeds", type=int, default=8, help="Seeds per judged prompt.")
    parser.add_argument("--threads", type=int, default=1, help="Compute threads.")
    parser.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="NAME=W",
        help="A LoRA's weight in the stacks: 'A star=0.8' (A star, B heart, S pink; default 1).",
    )
    parser.add_argument("--sheet", type=Path, help="Write a labelled sheet of every judged sample per mode here.")
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON here.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    import tempfile

    from studio.generate import GenerationEngine
    from studio.pocket.concept import sheet, write_concept_images
    from studio.runtime import apply_thread_budget

    apply_thread_budget(args.threads)
    star, heart = concepts()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.runs or Path(scratch)
        runs = {
            "A star": train_run(
                args.preset, "A-star", lambda f: write_concept_images(f, star), star.trigger, root, args.overrides
            ),  # fmt: skip
            "B heart": train_run(
                args.preset, "B-heart", lambda f: write_concept_images(f, heart), heart.trigger, root, args.overrides
            ),  # fmt: skip
            "S pink": train_run(
                args.preset, "S-pink", write_style_images, "pink", root, args.overrides + [f"steps={args.style_steps}"]
            ),  # fmt: skip
        }
        weights = {}
        for text in args.weight:
            name, _, value = text.partition("=")
            weights[runs[name].name] = float(value)
        engine = GenerationEngine(device="cpu")
        cases = probes_for(star, heart)
        results = {}
        for mode in args.stacking or ("alone", "sum", "scoped"):
            started = time.perf_counter()
            figures = judge_mode(engine, mode, runs, cases, args.seeds, weights)
            print(f"stacking {mode} ({time.perf_counter() - started:.0f} s):")
            for name, value in figures.as_dict().items():
                hits = figures.hits[name] * 8 / figures.totals[name]
                print(f"  {name:34s} {value:>6s}   {'ok' if hits >= GOAL else 'below goal'}")
            if args.sheet:
                print(f"  sheet: {sheet(figures, args.sheet / f'{mode}.png')}")
            results[mode] = figures.as_dict()
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
