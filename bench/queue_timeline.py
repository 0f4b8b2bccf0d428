"""Where a queue's time goes, per entry: starting the training process, training (+ export), and the scorecard.

Reads a data folder whose queue has run (`studio queue run`, or the app's Run queue) and prints, for each finished
entry: seconds from the run folder's creation to its "started" event (process start + model load), from "started"
to "finished" (the steps, checkpoints, samples and export), and from "finished" to the scorecard file (the eval
process: its start, the model load, rendering and judging), then the scorecard's share of the whole. Nothing is
run; time a queue first, e.g. `studio queue add ... --sweep learning_rate=1e-3,3e-3 && studio queue run`, then
`.venv/bin/python bench/queue_timeline.py data/`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studio import runs
from studio.evaluate.report import SCORECARD
from studio.queue import QueueStore


def timeline(run_dir: Path) -> dict[str, float] | None:
    events = runs.read_events(run_dir)
    started = next((e["time"] for e in events if e["type"] == "started"), None)
    finished = next((e["time"] for e in reversed(events) if e["type"] == "finished"), None)
    card = run_dir / "eval" / SCORECARD
    if started is None or finished is None:
        return None
    out = {"startup": started - (run_dir / runs.CONFIG).stat().st_mtime, "training": finished - started}
    out["scorecard"] = card.stat().st_mtime - finished if card.is_file() else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="The data folder holding queue.json and runs/.")
    args = parser.parse_args()
    print(f"{'entry':>5}  {'steps':>5}  {'startup s':>9}  {'training s':>10}  {'scorecard s':>11}  scorecard share")
    totals = {"startup": 0.0, "training": 0.0, "scorecard": 0.0}
    for entry in QueueStore(args.data_dir).load().entries:
        times = timeline(args.data_dir / "runs" / str(entry.run_id)) if entry.status == "finished" else None
        if times is None:
            continue
        for key in totals:
            totals[key] += times[key]
        share = times["scorecard"] / sum(times.values())
        steps = entry.config["training"]["steps"]
        print(
            f"{entry.id:>5}  {steps:>5}  {times['startup']:>9.1f}  {times['training']:>10.1f}  "
            f"{times['scorecard']:>11.1f}  {share:.0%}"
        )
    whole = sum(totals.values())
    if whole:
        print(
            f"all: startup {totals['startup'] / whole:.0%}, training {totals['training'] / whole:.0%}, "
            f"scorecard {totals['scorecard'] / whole:.0%} of {whole:.0f} s"
        )


if __name__ == "__main__":
    main()
