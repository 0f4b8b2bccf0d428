"""Start the real studio in a subprocess and drive it with headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from studio_server import free_port, serve

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


def _serve(data_dir: Path, *args: str):
    """Run `python app.py *args` on a free port with its own data folder; yields its URL and folder."""
    port = free_port()
    yield from serve(data_dir, ["app.py", *args], port, env={"PORT": str(port)})


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
