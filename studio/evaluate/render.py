"""A run's pipeline at any checkpoint, and the prompt set rendered with fixed seeds.

The method is set up on the base model once (LoRA adapters start as a no-op, DreamBooth's UNet is untouched
until a checkpoint is loaded, Textual Inversion's new rows are never read by prompts without the placeholder),
so the base model's images come from the same pipeline before any checkpoint's weights are copied in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from studio import runs
from studio.evaluate.prompts import EvalPrompt
from studio.models import load_pipeline
from studio.runs.checkpoints import TRAINABLE, list_checkpoints
from studio.train.config import load_config_file
from studio.train.methods import method_class

BATCH = 8


@dataclass
class RunPipeline:
    pipe: Any
    method: Any
    resolution: int
    steps: int


def checkpoint_steps(run_dir: Path) -> list[int]:
    return [int(folder.name.split("-")[1]) for folder in list_checkpoints(run_dir)]


def checkpoint_folder(run_dir: Path, step: int) -> Path:
    for folder in list_checkpoints(run_dir):
        if int(folder.name.split("-")[1]) == step:
            return folder
    have = ", ".join(str(s) for s in checkpoint_steps(run_dir)) or "none"
    raise ValueError(f"run {run_dir.name} has no checkpoint at step {step} (it has: {have})")


def load_run_pipeline(run_dir: Path, device: str = "cpu", steps: int | None = None) -> RunPipeline:
    """The base model with the run's method set up on it (no checkpoint loaded yet)."""
    config = load_config_file(run_dir / runs.CONFIG)
    pipe = load_pipeline(config.training.base_model, device=device, dtype=torch.float32).pipe
    pipe.set_progress_bar_config(disable=True)
    method = method_class(config.method)(config.method_config)
    method.setup(pipe)
    pipe.unet.eval()
    pipe.text_encoder.eval()
    return RunPipeline(pipe, method, config.training.resolution, steps or config.training.sample_steps)


def load_checkpoint_weights(run: RunPipeline, folder: Path) -> None:
    from safetensors.torch import load_file

    run.method.load_trainable_state_dict(run.pipe, load_file(str(folder / TRAINABLE)))


@contextmanager
def merged_adapters(pipe: Any) -> Iterator[int]:
    """The pipeline's adapter layers (LoRA, DoRA, LoHa, LoKr) merged into their base weights while it renders, then
    the base weights put back exactly from a copy (unmerging alone subtracts, which leaves rounding behind, and the
    next checkpoint must start from the same numbers). Merged, a step costs what the base model's does: on the
    pocket model scoring a LoRA run's checkpoints took half the time. Yields how many layers were merged."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    parts = [getattr(pipe, name, None) for name in ("unet", "text_encoder", "text_encoder_2")]
    layers = [m for part in parts if part is not None for m in part.modules() if isinstance(m, BaseTunerLayer)]
    # the copy waits in host memory: on a GPU the base weights are not held twice
    saved = [
        {n: p.detach().to("cpu", copy=True) for n, p in layer.get_base_layer().named_parameters()} for layer in layers
    ]
    for layer in layers:
        layer.merge()
    try:
        yield len(layers)
    finally:
        for layer, weights in zip(layers, saved):
            layer.unmerge()
            for name, param in layer.get_base_layer().named_parameters():
                param.data.copy_(weights[name])


@torch.no_grad()
def render_prompts(run: RunPipeline, prompts: list[EvalPrompt], guidance: float = 6.0) -> list[Image.Image]:
    """One image per prompt, each from its own seeded generator: the same whatever the batch size."""
    with merged_adapters(run.pipe):
        return _render(run, prompts, guidance)


def _render(run: RunPipeline, prompts: list[EvalPrompt], guidance: float) -> list[Image.Image]:
    images: list[Image.Image] = []
    for start in range(0, len(prompts), BATCH):
        chunk = prompts[start : start + BATCH]
        images += run.pipe(
            [p.prompt for p in chunk],
            num_inference_steps=run.steps,
            guidance_scale=guidance,
            height=run.resolution,
            width=run.resolution,
            generator=[torch.Generator("cpu").manual_seed(p.seed) for p in chunk],
        ).images
    return images
