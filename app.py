"""Start the studio: `python app.py` (the same as `studio ui`; `--public` for public mode, on by default in a Space)."""

import os
import sys

from studio.cli import main

if __name__ == "__main__":
    # A hosted Space sets the port; locally the default 7860 applies.
    args = ["ui", "--port", os.environ.get("PORT", os.environ.get("GRADIO_SERVER_PORT", "7860"))]
    if os.environ.get("SPACE_ID"):
        args += ["--host", "0.0.0.0"]
    args += sys.argv[1:]  # e.g. --public, --no-public
    raise SystemExit(main(args))
