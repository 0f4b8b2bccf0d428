"""Time to the first studio page, and memory of the idle app, against a bare Gradio app on the same machine.

Starts `python app.py` (the whole studio: every tab, nothing generated yet) and, for reference, a one-textbox
Gradio Blocks app, each in its own process on a free port; measures seconds from process start until the page
answers HTTP 200, and the resident memory (VmRSS) of the idle process a few seconds later. Variants alternate and
medians are reported, because the CPU may be shared. One command: `.venv/bin/python bench/app_startup.py`.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = """
import gradio as gr, sys
with gr.Blocks() as demo:
    gr.Textbox(label="prompt")
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(command: list[str], port: int, env: dict, settle: float) -> tuple[float, float]:
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        seconds = time.perf_counter() - started
        time.sleep(settle)  # idle: whatever the page's first requests loaded is in memory now
        return seconds, rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds idle before reading memory")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"studio": [], "bare gradio": []}
    with tempfile.TemporaryDirectory() as scratch:
        env = os.environ | {"STUDIO_DATA_DIR": scratch, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
        bare = Path(scratch) / "bare_app.py"
        bare.write_text(BARE_APP, encoding="utf-8")
        for _ in range(args.rounds):
            port = free_port()
            results["studio"].append(measure([sys.executable, "app.py"], port, env | {"PORT": str(port)}, args.settle))
            port = free_port()
            results["bare gradio"].append(measure([sys.executable, str(bare), str(port)], port, env, args.settle))
    medians = {name: tuple(statistics.median(v[i] for v in values) for i in (0, 1)) for name, values in results.items()}
    for name, (seconds, memory) in medians.items():
        print(f"{name:12} first page {seconds:5.2f} s   idle RSS {memory:6.0f} MB   ({args.rounds} rounds, median)")
    studio, bare_app = medians["studio"], medians["bare gradio"]
    print(f"ratio studio / bare gradio: time {studio[0] / bare_app[0]:.2f}, memory {studio[1] / bare_app[1]:.2f}")


if __name__ == "__main__":
    main()
