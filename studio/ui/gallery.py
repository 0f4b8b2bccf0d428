"""The gallery that shows generated images (Generate and Playground tabs), and where they are saved."""

from __future__ import annotations

import gradio as gr

from studio.generate.engine import GeneratedImage, save_images
from studio.workspace import Workspaces


def saved_for_page(workspaces: Workspaces, results: list[GeneratedImage]) -> list[str]:
    """Save generated images in outputs/ of the caller's workspace (a visitor's own in a public studio, never a
    folder shared by all); the paths the page or an API client is handed (Workspaces.served_copy)."""
    paths = save_images(results, workspaces.get().data_dir / "outputs")
    return [workspaces.served_copy(path) for path in paths]


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
