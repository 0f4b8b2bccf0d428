"""4-step sampling with the shipped LCM-LoRA vs the pocket model's 25-step default, judged by the evaluator.

Same prompts (every base combination) and seeds for every row; rows without the LoRA show what the LCM scheduler
or a short DPM-Solver run does alone. Latency: four images per call, the rows timed in alternation.
`.venv/bin/python bench/lcm_pocket.py [--seeds 2] [--threads 1]`
"""

from __future__ import annotations

import argparse
import statistics
import time

from studio.runtime import prepare_environment

prepare_environment()

# (label, sampler, steps, guidance, with the LCM-LoRA)
ROWS = [
    ("default sampler (DPM++ 2M), 25 steps, CFG 6", "default", 25, 6.0, False),
    ("LCM-LoRA, LCM, 4 steps, guidance 1", "lcm", 4, 1.0, True),
    ("LCM-LoRA, LCM, 2 steps, guidance 1", "lcm", 2, 1.0, True),
    ("LCM-LoRA, LCM, 1 step, guidance 1", "lcm", 1, 1.0, True),
    ("no LoRA, LCM, 4 steps, guidance 1", "lcm", 4, 1.0, False),
    ("no LoRA, LCM, 2 steps, guidance 1", "lcm", 2, 1.0, False),
    ("no LoRA, DPM++ 2M, 4 steps, CFG 6", "default", 4, 6.0, False),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="Timed calls per row.")
    parser.add_argument("--lora", default=None, help="LCM-LoRA folder or file (default: the shipped one).")
    args = parser.parse_args()

    import torch

    from studio.generate.samplers import make_scheduler
    from studio.models import load_pipeline
    from studio.paths import POCKET_LCM_LORA_DIR
    from studio.pocket.quality import measure

    torch.set_num_threads(args.threads)
    pipe = load_pipeline("pocket").pipe
    pipe.set_progress_bar_config(disable=True)
    model_scheduler = pipe.scheduler
    pipe.load_lora_weights(str(args.lora or POCKET_LCM_LORA_DIR), adapter_name="lcm")

    def configure(sampler: str, with_lora: bool) -> None:
        pipe.scheduler = make_scheduler(sampler, model_scheduler)
        pipe.set_adapters(["lcm"], [1.0 if with_lora else 0.0])

    prompts = ["a red circle on a white background", "a yellow triangle on a black background"] * 2
    times: dict[str, list[float]] = {label: [] for label, *_ in ROWS}
    for _ in range(args.rounds):
        for label, sampler, steps, guidance, with_lora in ROWS:
            configure(sampler, with_lora)
            generators = [torch.Generator().manual_seed(i) for i in range(len(prompts))]
            started = time.perf_counter()
            pipe(prompts, num_inference_steps=steps, guidance_scale=guidance, generator=generators)
            times[label].append(time.perf_counter() - started)

    seeds = tuple(range(args.seeds))
    reference_time = statistics.median(times[ROWS[0][0]])
    print(
        f"{args.threads} thread(s); quality over 96 base combinations x {args.seeds} seed(s); 4 images per timed call"
    )
    print("| sampling | joint | shape | colour | background | s per 4 images (median) | speed-up |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, sampler, steps, guidance, with_lora in ROWS:
        configure(sampler, with_lora)
        report = measure(pipe, seeds=seeds, steps=steps, guidance=guidance)
        median = statistics.median(times[label])
        print(
            f"| {label} | {report.rate():.1%} | {report.rate('shape'):.1%} | {report.rate('color'):.1%} "
            f"| {report.rate('background'):.1%} | {median:.2f} | {reference_time / median:.1f}x |"
        )


if __name__ == "__main__":
    main()
