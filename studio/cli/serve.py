"""`studio serve`: the studio as a server for other programs: the REST API at /api/v1 and the Gradio API, with the
page alongside (the same server as `studio ui`, with limits on how much generation work it accepts)."""

from __future__ import annotations

import argparse

from studio.cli.ui import add_server_options


def register(commands) -> None:
    description = "Serve the REST API (/api/v1, docs at /api/v1/docs) and the Gradio API, with the page alongside."
    p = commands.add_parser("serve", help="Serve the studio's HTTP APIs.", description=description)
    add_server_options(p)
    p.add_argument(
        "--max-running", type=int, default=1,
        help="Generation requests running at once (default 1: one pipeline generates one request at a time).",
    )  # fmt: skip
    p.add_argument(
        "--max-waiting", type=int, default=2,
        help="Generation requests waiting for a slot (default 2); more are answered 503 busy with Retry-After.",
    )  # fmt: skip
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from studio.serve.admission import ServeLimits
    from studio.serve.rest import DOCS_URL
    from studio.ui.app import launch

    limits = ServeLimits(max_running=args.max_running, max_waiting=args.max_waiting)  # bad values: one clear line
    shown_host = "127.0.0.1" if args.host == "0.0.0.0" else args.host
    print(f"REST API docs: http://{shown_host}:{args.port}{DOCS_URL}", flush=True)
    print(f"Gradio API:    http://{shown_host}:{args.port}/?view=api", flush=True)
    launch(host=args.host, port=args.port, public=args.public, limits=limits)
    return 0
