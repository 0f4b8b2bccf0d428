"""`studio merge-lora`: several LoRAs with weights -> one LoRA file (the playground's "save this mix")."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    p = commands.add_parser(
        "merge-lora",
        help="Merge LoRAs with weights into one file.",
        description="Merge several LoRAs, each with its weight, into one .safetensors LoRA (kohya format, exact: "
        "the merged file at weight 1 draws what the stack draws).",
    )
    p.add_argument(
        "--lora", action="append", required=True, metavar="PATH[:WEIGHT]", help="A LoRA and its weight (repeatable)."
    )
    p.add_argument("--model", "-m", default="pocket", help="The base model the LoRAs belong to (default pocket).")
    p.add_argument("--out", required=True, help="The merged .safetensors file.")
    p.add_argument("--allow-pickle", action="store_true", help="Allow pickle LoRA files (read with weights_only=True).")
    p.add_argument("--device", default="cpu", help="Where to merge (default cpu).")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from studio.adapters.stack import LoraSpec
    from studio.generate.engine import GenerationEngine
    from studio.generate.mix import save_mix

    engine = GenerationEngine(device=args.device, allow_pickle_adapters=args.allow_pickle)
    print(save_mix(engine, args.model, [LoraSpec.parse(text) for text in args.lora], args.out))
    return 0
