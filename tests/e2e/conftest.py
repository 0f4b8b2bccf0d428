"""Start the real studio in a subprocess and drive it with headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from studio.paths import POCKET_MODEL_DIR, PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(data_dir: Path, *args: str):
    """Run `python app.py *args` on a free port with its own data folder; yields its URL and folder."""
    if not (POCKET_MODEL_DIR / "model_index.json").exists():
        pytest.fail("the pocket model is missing from assets/pocket")
    port = _free_port()
    env = os.environ | {
        "PORT": str(port),
        "STUDIO_DATA_DIR": str(data_dir),
        "STUDIO_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("SPACE_ID", None)
    log = open(data_dir / "server.log", "w")
    process = subprocess.Popen([sys.executable, "app.py", *args], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log)
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


@pytest.fixture(scope="session")
def studio_server(tmp_path_factory):
    yield from _serve(tmp_path_factory.mktemp("studio-data"))


@pytest.fixture(scope="session")
def public_server(tmp_path_factory):
    """The studio in public mode: a workspace per visitor."""
    yield from _serve(tmp_path_factory.mktemp("public-data"), "--public")


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (CI installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, studio_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(studio_server["url"])
    yield page
    context.close()
