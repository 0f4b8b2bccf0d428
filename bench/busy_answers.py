"""How long a 503 `busy` answer of the REST API takes, while the work it is refused for goes on.

Starts `studio serve` (one generation at a time, none waiting, one thread) on a free port with a data folder of its
own holding a captioned three-image dataset, then times, from a client in this process:
- `POST /api/v1/train` while another start is still writing its run folder (the request that arrives between the
  first's 202 being asked for and given; the first start on a fresh server loads the training code), and while a
  run trains;
- `POST /api/v1/generate` while a long generation (100 steps x 4 images) holds the slot;
- `GET /api/v1/health` beside them.
Medians and maxima in milliseconds. The runs are cancelled through their command file, as the page's Stop does.
One command: `.venv/bin/python bench/busy_answers.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a red circle on a black background"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict | None = None) -> tuple[int, float, dict]:
    """(status, seconds, JSON answer) of a GET, or a POST when a body is given."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=600) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as answer:
        status, raw = answer.code, answer.read()
    return status, time.perf_counter() - started, json.loads(raw) if raw.startswith(b"{") else {}


def make_dataset(data_dir: Path) -> None:
    from studio.pocket.world import Scene, render
    from studio.ui import dataset_tab
    from studio.workspace import Workspace

    files = []
    for index, scene in enumerate([("circle", "red", "black"), ("square", "blue", "white"), ("star", "green", "gray")]):
        files.append(data_dir / f"upload-{index}.png")
        render(Scene(*scene), 64).save(files[-1])
    workspace = Workspace(data_dir)
    dataset_tab.import_files(workspace, "shapes", [str(f) for f in files], 64, "zq")
    dataset_tab.auto_caption(workspace, "shapes", "pocket", False)


def stop_run(url: str, data_dir: Path, run_id: str) -> None:
    """Cancel a run and wait until the server trains nothing (its process saves a checkpoint first)."""
    from studio import runs

    run_dir = data_dir / "runs" / run_id
    deadline = time.time() + 300
    while time.time() < deadline and runs.replay(run_dir).status == "created":
        time.sleep(0.5)  # a run reads its commands from its first step on
    runs.send_command(run_dir, "cancel")
    while time.time() < deadline and call(url + "/api/v1/health")[2]["training"]["running"]:
        time.sleep(0.5)


class Timings:
    def __init__(self) -> None:
        self.ms: list[float] = []
        self.statuses: set[int] = set()

    def add(self, answer: tuple[int, float, dict]) -> None:
        self.statuses.add(answer[0])
        self.ms.append(answer[1] * 1000)

    def report(self, name: str) -> None:
        ms = self.ms
        print(f"| {name} | {len(ms)} | {statistics.median(ms):.0f} | {max(ms):.0f} | {sorted(self.statuses)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="busy requests per case (default 7)")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="busy-answers-"))
    make_dataset(data_dir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | {"STUDIO_DATA_DIR": str(data_dir), "STUDIO_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "studio", "serve", "--port", str(port), "--max-running", "1", "--max-waiting", "0"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _answers(url):
            if server.poll() is not None:
                raise RuntimeError(f"studio serve exited with {server.returncode}")
            time.sleep(0.5)
        print("| busy answer | n | median ms | max ms | statuses |\n| --- | --- | --- | --- | --- |")
        # first, on a fresh server: its first start loads the training code, seconds
        train = {"preset": "lora-pocket", "dataset": "shapes", "settings": {"steps": 400}}
        starts, starting, training = Timings(), Timings(), Timings()
        for _ in range(3):
            first: list = []
            thread = threading.Thread(target=lambda out=first: out.append(call(url + "/api/v1/train", train)))
            thread.start()
            time.sleep(0.3)  # the first start is writing its run folder now (it takes seconds)
            starting.add(call(url + "/api/v1/train", train))
            thread.join()
            starts.add(first[0])
            for _ in range(args.repeats // 3 + 1):
                training.add(call(url + "/api/v1/train", train))
                time.sleep(0.3)
            if first[0][0] != 202:
                raise RuntimeError(f"the run did not start: {first[0]}")
            stop_run(url, data_dir, first[0][2]["run_id"])
        starts.report("(the start itself, 202; the first on a fresh server loads the training code)")
        starting.report("`POST /train` while another start writes its run folder")
        training.report("`POST /train` while a run trains")

        call(url + "/api/v1/generate", {"prompt": PROMPT, "steps": 2})  # the model loaded, as on a warm server

        long = threading.Thread(
            target=call, args=(url + "/api/v1/generate", {"prompt": PROMPT, "steps": 100, "count": 4})
        )
        long.start()
        time.sleep(1.0)
        generate, health = Timings(), Timings()
        for _ in range(args.repeats):
            generate.add(call(url + "/api/v1/generate", {"prompt": PROMPT, "steps": 2}))
            health.add(call(url + "/api/v1/health"))
            time.sleep(0.3)
        long.join()
        generate.report("`POST /generate` while a generation holds the slot")
        health.report("`GET /health` meanwhile")

    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(data_dir, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/api/v1/health", timeout=2)
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
