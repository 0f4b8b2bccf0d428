"""One run on screen: loss chart (raw and smoothed), learning rate, speed and ETA, validation samples, checkpoints.

Used live by the Train tab and again by the Runs tab, both fed by `monitor.summarise` (the run folder only).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gradio as gr
import pandas as pd

from studio.train.monitor import RunSummary, format_duration

STATUS_WORDS = {
    "created": "starting (loading the model)",
    "running": "training",
    "finished": "finished",
    "cancelled": "cancelled (resumable)",
    "interrupted": "interrupted (resumable)",
    "failed": "failed",
}


def loss_frame(summary: RunSummary | None) -> pd.DataFrame | None:
    """Raw and smoothed loss by step; None (an empty box, no chart) until the first step.

    Never an empty frame: Gradio's chart takes its colour scale's domain from the series present when it builds the
    chart, and later data only replaces the rows. A chart built on an empty frame keeps an empty domain and draws
    every line without a colour, invisible. From None, the chart is built afresh on the first real rows.
    """
    if summary is None or not summary.points:
        return None
    rows = []
    for point in summary.points:
        rows.append({"step": point.step, "loss": point.loss, "series": "raw"})
        rows.append({"step": point.step, "loss": point.smoothed, "series": "smoothed"})
    return pd.DataFrame(rows, columns=["step", "loss", "series"]).astype({"step": "int64", "loss": "float64"})


def lr_frame(summary: RunSummary | None) -> pd.DataFrame | None:
    if summary is None or not summary.points:
        return None  # as the loss chart: no chart until there is a point
    rows = [{"step": p.step, "learning rate": p.lr} for p in summary.points]
    return pd.DataFrame(rows, columns=["step", "learning rate"]).astype({"step": "int64", "learning rate": "float64"})


def status_line(summary: RunSummary | None) -> str:
    if summary is None:
        return "No run yet. Choose a dataset and press **Start training**."
    total = summary.total_steps or "?"
    status = STATUS_WORDS.get(summary.status, summary.status)
    text = f"**{summary.label}** — {status}, step {summary.step} / {total} <small>(run {summary.run_id})</small>"
    if summary.reason and summary.status in ("failed", "cancelled", "interrupted"):
        text += f"  \n{summary.reason}"
    return text


def stats_line(summary: RunSummary | None) -> str:
    if summary is None or not summary.points:
        return ""
    last = summary.points[-1]
    parts = [f"loss {last.loss:.4f} (smoothed {last.smoothed:.4f})", f"lr {last.lr:.2e}"]
    if summary.steps_per_second:
        parts.append(f"{summary.steps_per_second:.2f} steps/s")
    if summary.status == "running":
        parts.append(f"ETA {format_duration(summary.eta_seconds)}")
    return " · ".join(parts)


def gallery_items(summary: RunSummary | None, serve: Callable[[Path], str] = str) -> list[tuple[str, str]]:
    """The run's samples for a gallery; `serve` gives the path the page may show (Workspaces.served_copy)."""
    if summary is None:
        return []
    return [(serve(s["path"]), f"step {s['step']}: {s['prompt']}") for s in summary.samples]


def checkpoints_line(summary: RunSummary | None) -> str:
    if summary is None:
        return ""
    lines = []
    if summary.checkpoints:
        lines.append("Checkpoints at step " + ", ".join(str(step) for step in summary.checkpoints))
    if summary.exports:
        lines.append("Exported: " + ", ".join(f"`{p.relative_to(summary.folder)}`" for p in summary.exports))
    lines += [f"⚠ {w}" for w in summary.warnings]
    return "  \n".join(lines)


class RunView:
    def __init__(self, prefix: str, serve: Callable[[Path], str] = str) -> None:
        self.serve = serve
        self.status = gr.Markdown(elem_id=f"{prefix}-status")
        self.stats = gr.Markdown(elem_id=f"{prefix}-stats")
        with gr.Row():
            self.loss = gr.LinePlot(
                loss_frame(None), x="step", y="loss", color="series", label="Loss: raw (light), smoothed (dark)",
                height=260, color_map={"raw": "#b8c4d6", "smoothed": "#2563eb"}, elem_id=f"{prefix}-loss",
                scale=3, colors_in_legend=[],  # the legend does not fit under the axis at this height: the label says it
            )  # fmt: skip
            # often a flat line (a constant schedule): a narrow chart beside the loss, not half the width
            self.lr = gr.LinePlot(
                lr_frame(None), x="step", y="learning rate", label="Learning rate", height=260, scale=1, min_width=220,
                elem_id=f"{prefix}-lr",
            )  # fmt: skip
        self.gallery = gr.Gallery(
            label="Validation samples (by step)", columns=6, height=230, object_fit="contain", format="png", preview=False,
            elem_id=f"{prefix}-samples",
        )  # fmt: skip
        self.checkpoints = gr.Markdown(elem_id=f"{prefix}-checkpoints")

    @property
    def outputs(self) -> list:
        return [self.status, self.stats, self.loss, self.lr, self.gallery, self.checkpoints]

    def updates(self, summary: RunSummary | None) -> dict:
        """What `summary` shows, by component (None: no run)."""
        return {
            self.status: status_line(summary),
            self.stats: stats_line(summary),
            self.loss: loss_frame(summary),
            self.lr: lr_frame(summary),
            self.gallery: gallery_items(summary, self.serve),
            self.checkpoints: checkpoints_line(summary),
        }
