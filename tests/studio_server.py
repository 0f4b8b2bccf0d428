"""Start the real studio (a `studio` command or app.py) in a subprocess on a free port, with its own data folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.paths import POCKET_MODEL_DIR, PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data_dir: Path, argv: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[dict]:
    """Run `python *argv` (which must listen on `port`) until it answers; yields its URL and data folder."""
    if not (POCKET_MODEL_DIR / "model_index.json").exists():
        pytest.fail("the pocket model is missing from assets/pocket")
    env = os.environ | {"STUDIO_DATA_DIR": str(data_dir), "STUDIO_THREADS": "1", "HF_HUB_OFFLINE": "1"} | (env or {})
    env.pop("SPACE_ID", None)
    log = open(data_dir / "server.log", "w")
    process = subprocess.Popen([sys.executable, *argv], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the studio exited: {(data_dir / 'server.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        raise RuntimeError("the studio did not answer within 120 s")
    yield {"url": url, "data_dir": Path(data_dir)}
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
