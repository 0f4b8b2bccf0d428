"""Start the studio: `python app.py` (the same as `studio ui`)."""

import os

from studio.cli import main

if __name__ == "__main__":
    # A hosted Space sets the port; locally the default 7860 applies.
    args = ["ui", "--port", os.environ.get("PORT", os.environ.get("GRADIO_SERVER_PORT", "7860"))]
    if os.environ.get("SPACE_ID"):
        args += ["--host", "0.0.0.0"]
    raise SystemExit(main(args))
