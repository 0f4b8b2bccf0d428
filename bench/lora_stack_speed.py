"""Stacked LoRA speed on the pocket model: base vs k LoRAs unfused vs the same k fused (goal: 3 fused <= 1.1x base),
and two LoRAs kept apart by LoRA Composite (`stacking="composite"`).

Each LoRA is random (fixed seeds) with the pocket LoRA preset's targets (attention, convolutions, feed-forward,
rank 8), so every adapted layer costs what a trained one costs. Times one 64x64 image of 25 DPM++ 2M steps with
guidance through `GenerationEngine.generate`, cases interleaved round by round, best of N after a warm-up. Run alone on the machine:
`.venv/bin/python bench/lora_stack_speed.py`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from studio.runtime import prepare_environment

prepare_environment()

TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2", "ff.net.0.proj", "ff.net.2"]


def write_random_lora(folder: Path, seed: int, rank: int = 8) -> Path:
    import peft
    import torch

    from studio.adapters.lora_files import save_lora_diffusers
    from studio.models import load_pipeline

    pipe = load_pipeline("pocket", device="cpu", dtype=torch.float32).pipe
    torch.manual_seed(seed)
    pipe.unet.add_adapter(peft.LoraConfig(r=rank, lora_alpha=rank, target_modules=TARGETS, init_lora_weights=False))
    with torch.no_grad():
        for name, param in pipe.unet.named_parameters():
            if "lora_B" in name:
                param.mul_(0.1)  # a visible but sane change, like a trained LoRA's
    return save_lora_diffusers(pipe, folder / f"lora-{seed}")


def round_robin(cases: dict, repeats: int) -> dict[str, list[float]]:
    """Time every case once per round, so drift of a shared machine hits all cases alike; each case has its own
    engine (own copy of the small model), so a round never pays for fusing or unfusing."""
    for engine, settings in cases.values():
        engine.generate(settings)  # warm-up: loads, fuses, first-call allocations
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (engine, settings) in cases.items():
            started = time.perf_counter()
            engine.generate(settings)
            times[name].append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()

    import torch

    from studio.generate import GenerationEngine, GenerationSettings

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        files = [write_random_lora(Path(folder), seed) for seed in (1, 2, 3)]

        def case(k: int, fuse: bool, stacking: str = "scoped") -> tuple:
            loras = [{"path": str(f), "weight": 0.7} for f in files[:k]]
            settings = GenerationSettings(
                prompt="a red circle on a black background",
                steps=args.steps,
                sampler="dpmpp_2m",
                loras=loras,
                fuse=fuse,
                stacking=stacking,
            )
            return GenerationEngine(device="cpu"), settings

        cases = {"base": case(0, False)}
        for k in (1, 3):
            cases[f"{k} LoRA unfused"] = case(k, False)
            cases[f"{k} LoRA fused"] = case(k, True)
        cases["2 LoRA composite"] = case(2, True, "composite")  # one UNet pass per LoRA: never fused
        times = round_robin(cases, args.repeats)
    base = min(times["base"])
    print(f"pocket model, 1 image, {args.steps} steps, {args.threads} threads, best / median of {args.repeats} rounds")
    print(f"{'what':<18} {'best':>8} {'median':>8} {'best / base':>12}")
    for name, values in times.items():
        print(f"{name:<18} {min(values):8.3f} {statistics.median(values):8.3f} {min(values) / base:12.2f}")
    ratio = min(times["3 LoRA fused"]) / base
    print(f"goal: 3 fused <= 1.1x base: {'met' if ratio <= 1.1 else 'not met'} ({ratio:.2f}x)")
    print("(the default stacking, scoped, fuses whatever the prompt switches on: its cost is the fused rows)")


if __name__ == "__main__":
    main()
