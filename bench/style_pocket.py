"""A style taught to the pocket model by a full fine-tune, judged on the whole prompt (issue 17's style figures).

96 images of the four base shapes in pink on black, captioned "a <shape> in zq style", trained by
`finetune-style-pocket` (or `--preset`), then, 8 seeds each: "a <shape> in zq style" must come out as that shape,
pink, on black; three base prompts without the style word must stay what the base model draws (the drift prompts of
the concept bench). `--sheet PATH` writes every judged sample to look at.

    .venv/bin/python bench/style_pocket.py --sheet outputs/style-sheet.png --set learning_rate=1e-4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from studio.runtime import prepare_environment

prepare_environment()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="finetune-style-pocket")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sheet", type=Path, help="Write a labelled sheet of every judged sample here.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    import torch

    from studio.pocket.concept import DRIFT_PROMPTS, Probe, judge_probes, pipeline_drawer, sheet
    from studio.pocket.datasets import STYLE_BACKGROUND, STYLE_COLOUR, write_style_folder
    from studio.pocket.world import BASE_SHAPES, caption_for
    from studio.runtime import apply_thread_budget
    from studio.train.config import parse_overrides, resolve_config
    from studio.train.loop import prepare_trainer
    from studio.train.start import create_run, run_training

    apply_thread_budget(args.threads)
    settings = {"sample_every": "0", "checkpoint_every": "0", "sample_prompts": "[a circle in zq style]"}
    config = resolve_config(args.preset, overrides=settings | parse_overrides(args.overrides))
    with tempfile.TemporaryDirectory() as scratch:
        folder = write_style_folder(Path(scratch) / "style", "zq", side=config.training.resolution)
        run_dir = create_run(config, folder, root=Path(scratch) / "runs")
        started = time.perf_counter()
        assert run_training(run_dir, export=False) == "finished"
        seconds = time.perf_counter() - started
        trainer = prepare_trainer(run_dir)
        trainer.pipe.unet.eval()
        probes = [Probe(f"style: {s}", f"a {s} in zq style", s, STYLE_COLOUR, STYLE_BACKGROUND) for s in BASE_SHAPES]
        probes += [Probe(f"drift: {c} {s}", caption_for(s, c, b), s, c, b) for s, c, b in DRIFT_PROMPTS]
        with torch.no_grad(), trainer.method.inference_weights(trainer.pipe):
            figures = judge_probes(pipeline_drawer(trainer.pipe, side=config.training.resolution), probes, args.seeds)
    print(f"{args.preset}: training {seconds:.0f} s for {config.training.steps} steps")
    for name, value in figures.as_dict().items():
        print(f"  {name:28s} {value:>6s}")
    if args.sheet:
        print(f"  sheet: {sheet(figures, args.sheet)}")


if __name__ == "__main__":
    main()
