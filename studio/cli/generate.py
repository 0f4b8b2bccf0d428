"""`studio generate`: text to PNGs that carry their parameters."""

from __future__ import annotations

import argparse

from studio.adapters.stack import LoraSpec, SvdiffSpec
from studio.generate.engine import GenerationEngine, GenerationSettings, fast_form_values, save_images
from studio.generate.samplers import SAMPLERS
from studio.generate.scoping import STACKING_MODES
from studio.paths import data_dir


def register(commands) -> None:
    p = commands.add_parser(
        "generate", help="Generate images from a prompt.", description="Generate images from a prompt."
    )
    add_settings_arguments(p, prompt_required=True)
    p.add_argument("--count", "-c", type=int, default=1, help=_help("count"))
    p.add_argument("--out", default=str(data_dir() / "outputs"), help="Folder for the PNGs (default: data/outputs).")
    p.set_defaults(handler=run)


def add_settings_arguments(p: argparse.ArgumentParser, prompt_required: bool) -> None:
    """The options of one image (shared with `studio compare`, whose grid cells are images like these)."""
    defaults = GenerationSettings(prompt="-")
    p.add_argument("--prompt", "-p", required=prompt_required, default=None, help=_help("prompt"))
    p.add_argument("--negative-prompt", "-n", default="", help=_help("negative_prompt"))
    p.add_argument("--seed", type=int, default=defaults.seed, help=_help("seed"))
    p.add_argument("--steps", type=int, default=None, help=f"{_help('steps')} (default {defaults.steps})")
    p.add_argument(
        "--guidance", "--cfg", type=float, default=None, help=f"{_help('guidance')} (default {defaults.guidance})"
    )
    p.add_argument("--width", type=int, default=0, help=_help("width"))
    p.add_argument("--height", type=int, default=0, help=_help("height"))
    p.add_argument("--sampler", choices=list(SAMPLERS), default="default", help="Sampling algorithm.")
    p.add_argument("--model", "-m", default=None, help=f"{_help('model')} (default pocket)")
    p.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="PATH[:WEIGHT]",
        help="A LoRA to stack (repeatable): a .safetensors file (diffusers or kohya), a run or a run checkpoint; "
        "the weight defaults to 1 and may be negative.",
    )
    p.add_argument(
        "--svdiff",
        action="append",
        default=[],
        metavar="PATH[:WEIGHT]",
        help="An SVDiff file of spectral shifts (repeatable): a .safetensors, a run or a run checkpoint; the weight "
        "scales the shifts (default 1).",
    )
    p.add_argument(
        "--embedding",
        action="append",
        default=[],
        metavar="PATH[:TOKEN]",
        help="A textual-inversion embedding (repeatable); the token defaults to the file's own or its name.",
    )
    p.add_argument("--stacking", choices=list(STACKING_MODES), default=defaults.stacking, help=_help("stacking"))
    p.add_argument("--fuse", action="store_true", help=_help("fuse"))
    p.add_argument(
        "--fast",
        action="store_true",
        help=f"{_help('fast')} Steps, guidance and sampler follow unless given (4, 1, lcm).",
    )
    p.add_argument(
        "--int8",
        action="store_true",
        help="Int8 weights for the UNet and text encoder (needs torchao; not combinable with --fuse).",
    )
    p.add_argument(
        "--config",
        default=None,
        help="For a single .safetensors model: a diffusers folder (or hub id) of the same family whose configs describe it.",
    )
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="Allow pickle files (.ckpt/.bin/.pt) for the model, LoRAs and embeddings. They can run code: only for "
        "files you trust (tensors are then read with weights_only=True).",
    )
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available).")


def _help(name: str) -> str:
    return GenerationSettings.__dataclass_fields__[name].metadata["help"]


def _embedding(text: str) -> dict:
    path, sep, token = text.rpartition(":")
    if sep and token and "/" not in token and "\\" not in token and not token.endswith("safetensors"):
        return {"path": path, "token": token}
    return {"path": text}


def settings_from_args(args: argparse.Namespace, **overrides) -> GenerationSettings:
    fast = bool(getattr(args, "fast", False))
    # fast mode's sampler / steps / guidance, except where the user chose their own
    implied = fast_form_values(True) if fast else {}
    values = {
        "prompt": args.prompt,
        "negative_prompt": args.negative_prompt,
        "seed": args.seed,
        "steps": args.steps,
        "guidance": args.guidance,
        "width": args.width,
        "height": args.height,
        "count": getattr(args, "count", 1),
        "sampler": args.sampler,
        "model": args.model,
        "loras": [LoraSpec.parse(text).to_dict() for text in args.lora],
        "embeddings": [_embedding(text) for text in args.embedding],
        "svdiffs": [SvdiffSpec.parse(text).to_dict() for text in args.svdiff],
        "fuse": args.fuse,
        "stacking": getattr(args, "stacking", "scoped"),
        "fast": fast,
        "quantize": "int8" if getattr(args, "int8", False) else "none",
    }
    if fast:
        values["sampler"] = args.sampler if args.sampler != "default" else implied["sampler"]
        values["steps"] = args.steps if args.steps is not None else implied["steps"]
        values["guidance"] = args.guidance if args.guidance is not None else implied["guidance"]
    values |= overrides
    return GenerationSettings(**{k: v for k, v in values.items() if v is not None})


def engine_from_args(args: argparse.Namespace):
    options = {"config_folder": args.config} if args.config else {}
    if args.allow_pickle:
        options["allow_pickle"] = True
    return GenerationEngine(device=args.device, load_options=options, allow_pickle_adapters=args.allow_pickle)


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    settings = settings_from_args(args)
    engine = engine_from_args(args)
    engine.prepare(settings)  # a bad model, LoRA or embedding fails here, before the progress bar
    with tqdm(desc="generating", unit="step") as bar:

        def on_step(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        results = engine.generate(settings, on_step=on_step)
    for path in save_images(results, args.out):
        print(path)
    return 0
