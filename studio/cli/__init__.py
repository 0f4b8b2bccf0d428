"""`studio ...`: every action of the UI as a command over the same engine."""

from __future__ import annotations

import argparse
import sys

from studio.runtime import prepare_environment


def build_parser() -> argparse.ArgumentParser:
    from studio.cli import compare, dataset, distill, evaluate, generate, lora, pocket, queue, serve, train, ui

    parser = argparse.ArgumentParser(
        prog="studio", description="Diffusion Studio: fine-tune and use text-to-image models."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (dataset, evaluate, generate, compare, lora, pocket, train, queue, distill, ui, serve):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    prepare_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        # Bad input: one clear line, not a traceback.
        print(f"studio {args.command}: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        from studio.data.files import write_failure

        failure = write_failure(error)  # a full or read-only disk: one sentence naming the folder
        if failure is None:
            raise
        print(f"studio {args.command}: {failure}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
