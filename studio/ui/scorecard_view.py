"""A run's scorecard on screen: the verdicts in words, a table per checkpoint, and a chart of each score over steps.

Shown by the Runs tab (with a button that scores the run) and the Compare tab (next to the checkpoint grid, so
"which checkpoint is best?" has both the pictures and the numbers). Reads the saved `<run>/eval/scorecard.json`
through `studio.evaluate.report`; scoring itself is `studio.evaluate.evaluate_run`, the same as `studio eval`.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from studio.evaluate.report import chart_points, next_step, read_scorecard, scorecard_panel

SCORE_WORDS = {
    "subject_fidelity": "subject",
    "prompt_fidelity": "prompt",
    "prior_preservation": "prior",
    "memorisation": "memorised",
    "held_out": "held-out",
}
# one colour per score, the same in every chart (memorised in red: the one where higher is worse)
SCORE_COLOURS = {
    "subject": "#2563eb", "prompt": "#16a34a", "prior": "#9ca3af", "memorised": "#dc2626", "held-out": "#f59e0b",
}  # fmt: skip
NOT_SCORED = (
    "Not scored yet. **Score checkpoints** renders the base model and every checkpoint on one fixed set of prompts "
    "and seeds, and tells which checkpoint is best and whether the run overfitted."
)


def verdict_text(card: dict | None) -> str:
    if card is None:
        return NOT_SCORED
    panel = scorecard_panel(card)
    judge = "pocket evaluator, exact" if card["judge"] == "pocket" else "CLIP-I / CLIP-T / DINO"
    flag = "⚠ **Overfitted**" if panel["overfitted"] else "✓ **Not overfitted**"
    best = panel["best_step"]
    best_words = "the base model" if best == 0 else f"step {best}" if best is not None else "none"
    return (
        f"**Best checkpoint: {best_words}.** {panel['best_reason']}  \n"
        f"{flag}: {panel['overfitting_reason']}  \n"
        f"**Next:** {next_step(card)}  \n"
        f"<small>{judge}; {card['settings']['prompts']} prompts, {card['settings']['steps']} steps, scored in "
        f"{card.get('seconds', 0):.0f} s. Subject = looks like the training images; prompt = follows the rest of the "
        "prompt; prior = prompts without the trigger unchanged; memorised = near-copies of a training image; "
        "held-out = fidelity on prompts never trained on.</small>"
    )


def legend_html() -> str:
    """The chart's legend, drawn by us: a coloured line and the score's word for each line."""
    items = [
        f'<span style="white-space:nowrap"><span style="color:{colour};font-weight:bold">━━</span> {word}</span>'
        for word, colour in SCORE_COLOURS.items()
    ]
    return "Lines: " + " &nbsp; ".join(items)


def score_frame(card: dict | None) -> pd.DataFrame | None:
    """Long-format points for gr.LinePlot; None (no chart) when there is nothing to draw, as the loss chart."""
    points = chart_points(card) if card else []
    if not points:
        return None
    frame = pd.DataFrame(points, columns=["step", "score", "value"])
    frame["score"] = frame["score"].map(lambda name: SCORE_WORDS.get(name, name))
    return frame.astype({"step": "int64", "value": "float64"})


def table_value(card: dict | None) -> dict | None:
    if card is None:
        return None
    panel = scorecard_panel(card)
    return {"headers": panel["headers"], "data": panel["rows"]}


class ScorecardView:
    def __init__(self, prefix: str) -> None:
        self.verdict = gr.Markdown(NOT_SCORED, elem_id=f"{prefix}-score-verdict")
        # the table over the chart, each the full width: beside each other the headers broke mid-word and the
        # chart's legend was cut off under its axis
        self.table = gr.Dataframe(
            interactive=False, wrap=True, label="Scores per checkpoint (step 0 = base model, * = best)",
            elem_id=f"{prefix}-score-table", visible=False,
        )  # fmt: skip
        self.chart = gr.LinePlot(
            None, x="step", y="value", color="score", label="Scores over steps (higher is better, except memorised)",
            height=320, y_lim=[0, 1], color_map=SCORE_COLOURS, elem_id=f"{prefix}-score-chart", visible=False,
            colors_in_legend=[],  # Gradio puts the legend under the axis, where the chart's height cuts it off
        )  # fmt: skip
        self.legend = gr.Markdown(legend_html(), elem_id=f"{prefix}-score-legend", visible=False)

    @property
    def outputs(self) -> list:
        return [self.verdict, self.table, self.chart, self.legend]

    def updates(self, card: dict | None) -> dict:
        """The verdict, table and chart of `card`, by component; an unscored run shows the sentence alone, not an
        empty table."""
        shown = card is not None
        return {
            self.verdict: verdict_text(card),
            self.table: gr.Dataframe(value=table_value(card), visible=shown),
            self.chart: gr.LinePlot(value=score_frame(card), visible=shown),
            self.legend: gr.Markdown(visible=shown),
        }

    def updates_for(self, run_dir: Path | None) -> dict:
        return self.updates(read_scorecard(run_dir) if run_dir else None)
