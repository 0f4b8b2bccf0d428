"""Peak GPU memory and speed of our training engine on SD 1.5-sized and SDXL-sized models, per memory option.

For each case (a preset, a resolution and a set of options: fp16/bf16, gradient checkpointing, 8-bit Adam,
cached latents, SDPA vs xformers) a fresh process builds nothing but runs our engine (`prepare_trainer` +
`train`) on a random-weight model of the real size (bench/random_models.py) for a few steps, and reports
`torch.cuda.max_memory_allocated` and the median step time after warm-up. A case whose package is missing
(bitsandbytes, xformers) is reported as skipped, not failed. Goals (issue 8): SD 1.5 LoRA at 512 under 8 GB peak,
SDXL LoRA at 1024 under 12 GB.

On a GPU machine: `python bench/gpu_memory.py` (all cases; `--only sd15` or a case name to run part; about a
minute per case on an H100, most of it loading). On a CPU the same path runs end to end with toy-sized models:
`python bench/gpu_memory.py --tiny` (peak RSS instead of GPU memory; the numbers mean nothing, the path is checked).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from studio.runtime import prepare_environment

prepare_environment()

GB = 1024**3


@dataclass(frozen=True)
class Case:
    name: str
    size: str  # sd15 | sdxl
    preset: str
    resolution: int
    options: dict = field(default_factory=dict)
    needs: str | None = None  # an optional package the case cannot run without


SD15_LORA = {"mixed_precision": "fp16"}
CASES = [
    Case("sd15-lora-fp32", "sd15", "lora-sd15", 512, {"mixed_precision": "no"}),
    Case("sd15-lora-fp16", "sd15", "lora-sd15", 512, SD15_LORA),
    Case("sd15-lora-bf16", "sd15", "lora-sd15", 512, {"mixed_precision": "bf16"}),
    Case("sd15-lora-fp16-gc", "sd15", "lora-sd15", 512, SD15_LORA | {"gradient_checkpointing": "true"}),
    Case("sd15-lora-fp16-nocache", "sd15", "lora-sd15", 512, SD15_LORA | {"cache_latents": "false"}),
    Case("sd15-lora-fp16-8bit", "sd15", "lora-sd15", 512, SD15_LORA | {"optimizer": "adamw8bit"}, "bitsandbytes"),
    Case("sd15-lora-fp16-xformers", "sd15", "lora-sd15", 512, SD15_LORA | {"attention": "xformers"}, "xformers"),
    Case(
        "sd15-dreambooth-fp16-gc-8bit",
        "sd15",
        "dreambooth-sd15",
        512,
        {"mixed_precision": "fp16", "gradient_checkpointing": "true", "optimizer": "adamw8bit"},
        "bitsandbytes",
    ),  # fmt: skip
    Case(
        "sd15-dreambooth-fp16-gc",
        "sd15",
        "dreambooth-sd15",
        512,
        {"mixed_precision": "fp16", "gradient_checkpointing": "true"},
    ),  # fmt: skip
    Case("sdxl-lora-bf16", "sdxl", "lora-sdxl", 1024, {"mixed_precision": "bf16"}),
    Case("sdxl-lora-bf16-gc", "sdxl", "lora-sdxl", 1024, {"mixed_precision": "bf16", "gradient_checkpointing": "true"}),
    Case("sdxl-lora-fp16-gc", "sdxl", "lora-sdxl", 1024, {"mixed_precision": "fp16", "gradient_checkpointing": "true"}),
]
GOALS = {"sd15-lora": 8.0, "sdxl-lora": 12.0}  # GB of peak memory, the best case of each family


def dataset(folder: Path, resolution: int, count: int = 4) -> Path:
    from studio.pocket.world import Scene, render

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        render(Scene("circle", "red", "black", 0.5, 0.5, 0.4 + 0.1 * index), resolution).save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text("a photo of sks dog", encoding="utf-8")
    return folder


def child(run_dir: Path) -> None:
    """One case in this process: train, then print peak memory and step times as one JSON line."""
    import resource

    import torch

    from studio.runs import read_events
    from studio.train.loop import prepare_trainer, train

    cuda = torch.cuda.is_available()
    trainer = prepare_trainer(run_dir)
    if cuda:
        torch.cuda.reset_peak_memory_stats()  # the training steps' peak, not the loading's
    train(trainer)
    steps = [e["seconds"] for e in read_events(run_dir) if e.get("type") == "step"]
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    warm = steps[2:] or steps  # the first steps pay for kernel selection and allocator growth
    print(
        json.dumps({"peak_bytes": peak, "step_seconds": statistics.median(warm), "device": "cuda" if cuda else "cpu"})
    )


def run_case(case: Case, model: Path, scratch: Path, steps: int, tiny: bool) -> dict:
    import importlib.util

    if case.needs and importlib.util.find_spec(case.needs) is None:
        return {"case": case.name, "skipped": f"{case.needs} is not installed"}
    from studio.train.config import resolve_config
    from studio.train.start import create_run

    resolution = 64 if tiny else case.resolution
    from random_models import few_step_overrides  # beside this script (sys.path[0] when run as one)

    overrides = few_step_overrides(model, resolution, steps) | {
        "sample_prompts": "[a photo of sks dog]",
        "num_class_images": "2",  # DreamBooth batches hold instance + class halves: the real memory shape
        **case.options,
    }
    if tiny:
        overrides |= {"mixed_precision": "no", "optimizer": "adamw", "attention": "sdpa"}
    config = resolve_config(case.preset, overrides={k: v for k, v in overrides.items() if _known(case.preset, k)})
    data = dataset(scratch / f"data-{resolution}", resolution)
    run_dir = create_run(config, data, run_id=case.name, root=scratch / "runs")
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(run_dir)], capture_output=True, text=True, env=os.environ.copy()
    )
    if done.returncode != 0:
        return {"case": case.name, "failed": done.stderr.strip().splitlines()[-1] if done.stderr else "exit"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"case": case.name, **result}


def _known(preset: str, key: str) -> bool:
    """Prior-preservation keys exist only for DreamBooth presets."""
    return preset.startswith("dreambooth") or key != "num_class_images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="Run the cases whose name contains this text (e.g. sd15, sdxl, 8bit).")
    parser.add_argument("--steps", type=int, default=8, help="Training steps per case (the first 2 are warm-up).")
    parser.add_argument("--tiny", action="store_true", help="Toy-sized models on any device: checks the path.")
    parser.add_argument("--models", type=Path, help="Where the random models are written (reused across calls).")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    from random_models import write_random_model  # beside this script (sys.path[0] when run as one)

    cases = [c for c in CASES if not args.only or args.only in c.name]
    with tempfile.TemporaryDirectory() as temp:
        scratch = Path(temp)
        models = args.models or scratch / "models"
        results = []
        for case in cases:
            size = f"tiny-{case.size}" if args.tiny else case.size
            model = write_random_model(size, models / size)
            results.append(run_case(case, model, scratch, args.steps, args.tiny))
            print(_line(results[-1]), flush=True)
    print()
    for family, limit in GOALS.items():
        measured = [r["peak_bytes"] / GB for r in results if r["case"].startswith(family) and "peak_bytes" in r]
        if measured:
            best = min(measured)
            print(f"{family}: lowest peak {best:.2f} GB (goal < {limit:.0f} GB: ratio {best / limit:.2f})")
    print(json.dumps(results))


def _line(result: dict) -> str:
    if "peak_bytes" not in result:
        return f"{result['case']:32s} {result.get('skipped') or 'FAILED: ' + result.get('failed', '')}"
    memory = "peak RSS" if result["device"] == "cpu" else "peak GPU"
    speed = 1 / result["step_seconds"] if result["step_seconds"] else float("inf")
    return f"{result['case']:32s} {memory} {result['peak_bytes'] / GB:6.2f} GB   {speed:6.2f} it/s"


if __name__ == "__main__":
    main()
