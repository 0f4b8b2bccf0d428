"""The gallery that shows generated images (Generate and Playground tabs)."""

from __future__ import annotations

import gradio as gr


def results_gallery(elem_id: str, height: int) -> gr.Gallery:
    """Three images a row, each whole: with Gradio's default `fit_columns` a single image widens to the full row and
    its square thumbnail, taller than the gallery, is cut off at the bottom."""
    return gr.Gallery(
        label="Images",
        columns=3,
        fit_columns=False,
        height=height,
        format="png",
        object_fit="contain",
        elem_id=elem_id,
    )
