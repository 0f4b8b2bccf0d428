"""`studio ui`: open the studio in the browser."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    p = commands.add_parser("ui", help="Start the studio web app.", description="Start the studio web app.")
    p.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 to share on your network).")
    p.add_argument("--port", type=int, default=7860, help="Port (default 7860).")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from studio.ui.app import launch

    launch(host=args.host, port=args.port)
    return 0
