"""`studio ui`: open the studio in the browser."""

from __future__ import annotations

import argparse
import os


def register(commands) -> None:
    p = commands.add_parser("ui", help="Start the studio web app.", description="Start the studio web app.")
    add_server_options(p)
    p.set_defaults(handler=run)


def add_server_options(p: argparse.ArgumentParser) -> None:
    """Where to listen and in which mode: shared by `studio ui` and `studio serve`."""
    p.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 to share on your network).")
    p.add_argument("--port", type=int, default=7860, help="Port (default 7860).")
    p.add_argument(
        "--public", action=argparse.BooleanOptionalAction, default=bool(os.environ.get("SPACE_ID")),
        help="Public mode: a workspace per visitor, caps on datasets, steps and runs, idle workspaces deleted "
        "(default: on in a Hugging Face Space, where SPACE_ID is set).",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from studio.ui.app import launch

    launch(host=args.host, port=args.port, public=args.public)
    return 0
