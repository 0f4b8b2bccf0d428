"""`studio generate`: text to PNGs that carry their parameters."""

from __future__ import annotations

import argparse

from studio.generate.engine import GenerationSettings
from studio.generate.samplers import SAMPLERS
from studio.paths import DATA_DIR


def register(commands) -> None:
    defaults = GenerationSettings(prompt="-")
    p = commands.add_parser(
        "generate", help="Generate images from a prompt.", description="Generate images from a prompt."
    )
    p.add_argument("--prompt", "-p", required=True, help=_help("prompt"))
    p.add_argument("--negative-prompt", "-n", default="", help=_help("negative_prompt"))
    p.add_argument("--seed", type=int, default=defaults.seed, help=_help("seed"))
    p.add_argument("--steps", type=int, default=defaults.steps, help=_help("steps"))
    p.add_argument("--guidance", "--cfg", type=float, default=defaults.guidance, help=_help("guidance"))
    p.add_argument("--width", type=int, default=0, help=_help("width"))
    p.add_argument("--height", type=int, default=0, help=_help("height"))
    p.add_argument("--count", "-c", type=int, default=1, help=_help("count"))
    p.add_argument("--sampler", choices=list(SAMPLERS), default="default", help="Sampling algorithm.")
    p.add_argument("--model", "-m", default="pocket", help=_help("model"))
    p.add_argument(
        "--config",
        default=None,
        help="For a single .safetensors model: a diffusers folder (or hub id) of the same family whose configs describe it.",
    )
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="Allow a pickle checkpoint (.ckpt/.bin). It can run code: only for files you trust.",
    )
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available).")
    p.add_argument("--out", default=str(DATA_DIR / "outputs"), help="Folder for the PNGs (default: data/outputs).")
    p.set_defaults(handler=run)


def _help(name: str) -> str:
    return GenerationSettings.__dataclass_fields__[name].metadata["help"]


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from studio.generate.engine import GenerationEngine, save_images

    settings = GenerationSettings(
        prompt=args.prompt,
        negative_prompt=args.negative_prompt,
        seed=args.seed,
        steps=args.steps,
        guidance=args.guidance,
        width=args.width,
        height=args.height,
        count=args.count,
        sampler=args.sampler,
        model=args.model,
    )
    options = {"config_folder": args.config} if args.config else {}
    if args.allow_pickle:
        options["allow_pickle"] = True
    engine = GenerationEngine(device=args.device, load_options=options)
    engine.load(settings.model)  # a bad model fails here, before the progress bar
    with tqdm(desc="generating", unit="step") as bar:

        def on_step(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        results = engine.generate(settings, on_step=on_step)
    for path in save_images(results, args.out):
        print(path)
    return 0
