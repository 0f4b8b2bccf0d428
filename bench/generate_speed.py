"""Pocket model generation speed: four 64x64 images, 25 steps, CFG, on this machine's CPU.

Prints the time of our engine next to a bare diffusers pipeline call on the
same model, and the ratio of each to the 5-second goal. Run alone on the
machine: `.venv/bin/python bench/generate_speed.py`.
"""

from __future__ import annotations

import argparse
import statistics
import time

from studio.runtime import prepare_environment

prepare_environment()


def best_of(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="pocket")
    args = parser.parse_args()

    import torch
    from diffusers import StableDiffusionPipeline

    from studio.generate import GenerationEngine, GenerationSettings
    from studio.models import load_pipeline

    torch.set_num_threads(args.threads)
    prompt = "a yellow triangle on a black background"
    settings = GenerationSettings(prompt=prompt, count=4, steps=25, guidance=6.0, model=args.model)

    engine = GenerationEngine(device="cpu")
    engine.generate(settings)  # warm-up: load and first-call overheads
    ours_best, ours_median = best_of(lambda: engine.generate(settings), args.repeats)

    bare = load_pipeline(args.model, device="cpu").pipe
    assert isinstance(bare, StableDiffusionPipeline)
    bare.set_progress_bar_config(disable=True)

    def bare_call():
        generators = [torch.Generator().manual_seed(i) for i in range(4)]
        bare([prompt] * 4, num_inference_steps=25, guidance_scale=6.0, generator=generators)

    bare_call()
    bare_best, bare_median = best_of(bare_call, args.repeats)

    print(f"threads={args.threads} torch={torch.__version__} model={args.model}")
    print(f"ours: best {ours_best:.2f} s, median {ours_median:.2f} s  (goal <= 5 s: {ours_best / 5:.2f}x of budget)")
    print(f"bare diffusers: best {bare_best:.2f} s, median {bare_median:.2f} s")
    print(f"ratio ours/bare: {ours_best / bare_best:.3f}")


if __name__ == "__main__":
    main()
