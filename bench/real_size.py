"""Real-size runs, timed and estimated: random-weight SD 1.5 and SDXL folders built from the published configs
(bench/random_models.py; the cost of a step depends on the shapes, not on the values), trained a few steps by each
method through `studio train`, each case in its own process, on whatever device is here (issue 23).

For each case it prints, as one JSON line: the studio's estimate made before the run (from the configs, and from
the runs already in this benchmark's runs folder when there are some), then what was measured: wall time, loading
(process start to the first step), the steps, the tail (final checkpoint, exports and their check), the export
check alone (from its events), the process's peak RSS (and peak GPU memory on a GPU), and disk used.

    python bench/real_size.py --models /tmp/real-size --cases lora-sd15 --steps 3
    python bench/real_size.py --models /tmp/real-size --tiny         # the whole path on toy models, in a minute

On a GPU the presets run as they are (fp16 / bf16); on a CPU at fp32 (`mixed_precision no`), the fix the studio
itself asks for. Heavy on a CPU: SD 1.5 needs about 12 GB of RAM and SDXL about 20 GB; run one case at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from studio.runtime import prepare_environment

prepare_environment()

GB = 1e9
TRIGGER = "zwx"
# case -> (model size, preset, overrides beyond the common ones)
CASES = {
    "lora-sd15": ("sd15", "lora-sd15", {}),
    # one class image of one step: prior preservation's doubled batch is measured, not an hour of drawing
    "dreambooth-sd15": ("sd15", "dreambooth-sd15", {"num_class_images": "1", "class_image_steps": "1"}),
    "ti-sd15": ("sd15", "ti-object-sd15", {}),
    "lora-sdxl": ("sdxl", "lora-sdxl", {}),
}


def dataset(root: Path, resolution: int, count: int = 4) -> Path:
    """A studio dataset of `count` shapes-world images at `resolution`, trigger 'zwx' in every caption."""
    from studio.data.importer import ImportOptions, import_dataset
    from studio.data.validate import ImageRules
    from studio.pocket.world import Scene, render

    name = f"real-size-{resolution}"
    if (root / name / "manifest.json").is_file():
        return root / name
    source = root / f"{name}-files"
    source.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        render(Scene("circle", "red", "black", 0.5, 0.5, 0.4 + 0.1 * index), resolution).save(source / f"{index}.png")
        (source / f"{index}.txt").write_text(f"a photo of {TRIGGER} dog", encoding="utf-8")
    options = ImportOptions(rules=ImageRules(resolution=resolution), trigger=TRIGGER)
    made, _ = import_dataset(name, [source], root=root, options=options)
    return made.root


def overrides(case: str, model: Path, steps: int, resolution: int, cpu: bool) -> dict[str, str]:
    from bench.random_models import few_step_overrides

    common = few_step_overrides(model, resolution, steps)
    if cpu:
        common["mixed_precision"] = "no"
    return common | CASES[case][2]


def estimates(case: str, settings: dict[str, str], runs_root: Path) -> dict:
    from studio.train import estimate
    from studio.train.config import resolve_config

    config = resolve_config(CASES[case][1], None, settings)
    from_configs = estimate.estimate(config, None)
    with_history = estimate.estimate(config, runs_root)
    return {
        "estimate_seconds": round(from_configs.seconds),
        "estimate_parts": {k: round(v) for k, v in from_configs.parts.items()},
        "estimate_ram_gb": round(from_configs.ram_gb, 1),
        "estimate_gpu_gb": from_configs.gpu_gb and round(from_configs.gpu_gb, 1),
        "estimate_disk_gb": round(from_configs.disk_gb, 2),
        "history_seconds": round(with_history.seconds),
        "history_basis": with_history.basis,
    }


def measure(run_dir: Path, wall: float, started_at: float) -> dict:
    from studio import runs

    events = runs.read_events(run_dir)
    steps = [e for e in events if e["type"] == "step"]
    first_step_start = steps[0]["time"] - steps[0]["seconds"]
    finished = next(e for e in events if e["type"] in ("finished", "failed"))
    exports = [e for e in events if e["type"] == "export"]
    # the export check runs between the final checkpoint event and the last export event
    save = [e for e in events if e["type"] == "checkpoint"][-1]
    disk = sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file())
    return {
        "status": finished["type"],
        "wall_seconds": round(wall),
        "load_seconds": round(first_step_start - started_at),
        "step_seconds": [round(e["seconds"], 1) for e in steps],
        "tail_seconds": round(finished["time"] - steps[-1]["time"]),
        "export_seconds": round(exports[-1]["time"] - save["time"]) if exports else None,
        "export_share": round((exports[-1]["time"] - save["time"]) / wall, 3) if exports else None,
        "peak_ram_gb": finished.get("peak_ram_gb"),
        "peak_gpu_gb": finished.get("peak_gpu_gb"),
        "disk_gb": round(disk / GB, 2),
    }


def run_case(case: str, models: Path, scratch: Path, steps: int, tiny: bool, extra: dict[str, str]) -> dict:
    import torch

    from bench.random_models import write_random_model

    size = CASES[case][0]
    model = write_random_model(f"tiny-{size}" if tiny else size, models / (f"tiny-{size}" if tiny else size))
    resolution = 64 if tiny else 512
    data = dataset(scratch / "datasets", resolution)
    runs_root = scratch / "runs"
    settings = overrides(case, model, steps, resolution, cpu=not torch.cuda.is_available()) | extra
    if tiny and case == "ti-sd15":
        settings["initializer_token"] = "circle"  # the pocket tokenizer's word for one token
    result = {"case": case, "steps": steps} | estimates(case, settings, runs_root)
    run_id = f"{case}-{steps}-{time.strftime('%H%M%S')}"
    command = [sys.executable, "-m", "studio", "train", "--preset", CASES[case][1], "--dataset", str(data)]
    command += ["--run-id", run_id, "--no-progress"] + [f"--set={k}={v}" for k, v in settings.items()]
    environment = os.environ | {"STUDIO_DATA_DIR": str(scratch)}
    started = time.time()
    process = subprocess.run(command, env=environment, capture_output=True, text=True)
    wall = time.time() - started
    if process.returncode:
        return result | {"status": "failed", "error": process.stdout[-800:] + process.stderr[-800:]}
    return result | measure(runs_root / run_id, wall, started)


def table(runs_root: Path) -> list[dict]:
    """Every finished run here against its estimates: from the configs alone, and from the other runs here (leave
    one out: a run never estimates itself). Measured time is the run's own: folder written to finished."""
    import tempfile

    from studio import runs
    from studio.train import estimate
    from studio.train.config import load_config_file

    folders = sorted(f for f in runs_root.iterdir() if (f / runs.CONFIG).is_file())
    rows = []
    for folder in folders:
        events = runs.read_events(folder)
        finished = next((e for e in events if e["type"] == "finished"), None)
        if finished is None:
            continue
        config = load_config_file(folder / runs.CONFIG)
        images = len(json.loads((folder / runs.DATASET).read_text(encoding="utf-8"))["items"])
        with tempfile.TemporaryDirectory() as others:
            for other in folders:
                if other != folder:
                    (Path(others) / other.name).symlink_to(other)
            from_others = estimate.estimate(config, Path(others), images)
        from_configs = estimate.estimate(config, None, images)
        took = finished["time"] - (folder / runs.CONFIG).stat().st_mtime
        rows.append(
            {
                "run": folder.name,
                "measured_seconds": round(took),
                "configs_seconds": round(from_configs.seconds),
                "configs_error": round(from_configs.seconds / took - 1, 2),
                "others_seconds": round(from_others.seconds),
                "others_error": round(from_others.seconds / took - 1, 2),
                "others_basis": from_others.basis,
                "measured_ram_gb": finished.get("peak_ram_gb"),
                "configs_ram_gb": round(from_configs.ram_gb, 2),
                "ram_error": round(from_configs.ram_gb / finished["peak_ram_gb"] - 1, 2)
                if finished.get("peak_ram_gb")
                else None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, required=True, help="Where the random-weight model folders go.")
    parser.add_argument("--scratch", type=Path, help="Datasets and runs (default: MODELS/scratch).")
    parser.add_argument("--cases", default=",".join(CASES), help=f"Comma-separated, of: {', '.join(CASES)}.")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="Toy-sized models: checks the path, times nothing.")
    parser.add_argument("--estimate-only", action="store_true", help="Print the estimates; train nothing.")
    parser.add_argument("--table", action="store_true", help="Every finished run here against its estimates.")
    parser.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="One more setting (e.g. export_check=full, to time the check this studio had before).",
    )
    args = parser.parse_args()
    scratch = args.scratch or args.models / ("scratch-tiny" if args.tiny else "scratch")
    extra = dict(pair.split("=", 1) for pair in args.extra)
    if args.table:
        for row in table(scratch / "runs"):
            print(json.dumps(row), flush=True)
        return
    for case in args.cases.split(","):
        if args.estimate_only:
            import torch

            model = args.models / CASES[case][0]
            settings = overrides(case, model, args.steps, 512, cpu=not torch.cuda.is_available()) | extra
            print(json.dumps({"case": case} | estimates(case, settings, scratch / "runs")), flush=True)
            continue
        print(json.dumps(run_case(case, args.models, scratch, args.steps, args.tiny, extra)), flush=True)


if __name__ == "__main__":
    main()
