"""INT8 (torchao weight-only) vs float32 inference on the pocket model: latency ratio, weight memory, quality.

Both pipelines are loaded side by side and timed in alternation (A, B, A, B, ...), so a busy machine slows both
alike and the ratio stays meaningful. Quality: the evaluator's joint accuracy over the same prompts and seeds.
`.venv/bin/python bench/int8_inference.py [--threads 1] [--rounds 5] [--dynamic]`
"""

from __future__ import annotations

import argparse
import statistics
import time

from studio.runtime import prepare_environment

prepare_environment()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="Timed pipeline calls of each variant.")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seeds", type=int, default=1, help="Seeds per base combination for the accuracy.")
    parser.add_argument("--dynamic", action="store_true", help="Also time torchao's int8 dynamic activation scheme.")
    args = parser.parse_args()

    import torch

    from studio.generate.quantize import _torchao, count_linear_layers, denoising_parts, quantize_pipeline, weight_bytes
    from studio.models import load_pipeline
    from studio.pocket.quality import measure

    torch.set_num_threads(args.threads)
    variants = {"float32": load_pipeline("pocket").pipe, "int8": load_pipeline("pocket").pipe}
    quantize_pipeline(variants["int8"], "int8")
    if args.dynamic:
        quantize_, _ = _torchao()
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig

        variants["int8-dynamic"] = load_pipeline("pocket").pipe
        for part in denoising_parts(variants["int8-dynamic"]).values():
            quantize_(part, Int8DynamicActivationInt8WeightConfig())
    for pipe in variants.values():
        pipe.set_progress_bar_config(disable=True)

    prompts = ["a red circle on a white background", "a yellow triangle on a black background"] * 2

    def call(pipe):
        generators = [torch.Generator().manual_seed(i) for i in range(len(prompts))]
        pipe(prompts, num_inference_steps=args.steps, guidance_scale=6.0, generator=generators)

    times: dict[str, list[float]] = {name: [] for name in variants}
    for pipe in variants.values():
        call(pipe)  # warm-up
    for _ in range(args.rounds):
        for name, pipe in variants.items():
            started = time.perf_counter()
            call(pipe)
            times[name].append(time.perf_counter() - started)

    reference = statistics.median(times["float32"])
    print(f"four 64x64 images, {args.steps} steps, CFG 6, {args.threads} thread(s), {args.rounds} alternating rounds")
    print("| variant | median s | best s | ratio to float32 | UNet + text encoder weights | int8 linears | joint |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, pipe in variants.items():
        parts = denoising_parts(pipe)
        megabytes = sum(weight_bytes(p) for p in parts.values()) / 1e6
        quantized = [count_linear_layers(p) for p in parts.values()]
        linears = f"{sum(q for q, _ in quantized)}/{sum(n for _, n in quantized)}"
        accuracy = "not measured (too slow)"
        if name != "int8-dynamic":
            report = measure(pipe, seeds=tuple(range(args.seeds)), steps=args.steps, guidance=6.0)
            accuracy = f"{report.rate():.1%} of {report.images}"
        median = statistics.median(times[name])
        print(
            f"| {name} | {median:.2f} | {min(times[name]):.2f} | {median / reference:.2f} | {megabytes:.1f} MB "
            f"| {linears} | {accuracy} |"
        )


if __name__ == "__main__":
    main()
