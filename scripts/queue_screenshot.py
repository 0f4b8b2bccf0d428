"""Screenshot of the Train tab's queue panel (docs/screenshots/queue.png) from a studio on an existing data folder.

    STUDIO_DATA_DIR=/path/with/a/queue .venv/bin/python scripts/queue_screenshot.py [out.png]

Starts `python app.py` on a free port with that data folder, opens the Train tab in headless Chromium, waits for the
queue table to fill, and saves a full-page screenshot. Needs chromium and playwright (the e2e test extras).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    from playwright.sync_api import sync_playwright

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "screenshots" / "queue.png")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"PORT": str(port), "STUDIO_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("tab", name="Train").click()
            page.locator("#queue-status").get_by_text("finished").wait_for(timeout=60_000)
            page.locator("#queue-sweep-pick input").click()  # the first sweep (the table shows the last one first)
            page.get_by_role("option", name="sweep-1").click()
            time.sleep(3)  # a timer tick or two: the status line and the sweep table
            page.locator("#queue-panel").scroll_into_view_if_needed()
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
