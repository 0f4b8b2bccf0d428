"""A run's exports: the method writes its files into outputs/ (safetensors only), then each is checked by reloading
it into a fresh base model and rendering the same image (export_check.py says how thoroughly).

Every file is written the way the tools that read it expect (tests/consumer_rules.py restates their rules); the
writers live with the adapters: studio.adapters.lora_files (diffusers, peft), studio.adapters.kohya (sd-scripts,
A1111 / Forge, ComfyUI), studio.models.saving (pipeline folders).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.adapters.kohya import kohya_consumer_warnings
from studio.data.files import WriteFailed, writing_in
from studio.runs.layout import KOHYA_FILE, OUTPUTS
from studio.train.export_check import lora_exports, one_step, quick_difference
from studio.train.loop import (
    check_finite_weights,
    divergence_advice,
    fail,
    inference_weights,
    load_base_pipeline,
    set_train_mode,
)


def render(pipe: Any, prompt: str, resolution: int, seed: int = 0, steps: int = 4) -> np.ndarray:
    """A deterministic image for comparing two pipelines."""
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator("cpu").manual_seed(seed)
    with torch.no_grad():
        out = pipe(
            prompt,
            num_inference_steps=steps,
            guidance_scale=3.0,
            height=resolution,
            width=resolution,
            generator=generator,
            output_type="np",
        )
    return out.images[0]


def max_difference(reference: np.ndarray, pipe: Any, prompt: str, resolution: int) -> float:
    """The largest pixel difference between `reference` and what `pipe` renders for the same prompt and seed."""
    return float(np.abs(render(pipe, prompt, resolution) - reference).max())


def verify_lora_file(reference: np.ndarray, fresh_pipe: Any, file: Path, prompt: str, resolution: int) -> float:
    """Load `file` into a fresh base pipeline and return the largest pixel difference to `reference`."""
    fresh_pipe.load_lora_weights(str(file.parent), weight_name=file.name)
    return float(np.abs(render(fresh_pipe, prompt, resolution) - reference).max())


def _remove_exports(files: list[Path]) -> None:
    import shutil

    for file in files:
        if file.is_dir():
            shutil.rmtree(file, ignore_errors=True)
        else:
            file.unlink(missing_ok=True)


def _write_exports(trainer: Any) -> list[Path]:
    """The method's export files in outputs/; on a full or read-only disk the run fails, with no new file left."""
    outputs = trainer.run_dir / OUTPUTS
    before = set(outputs.iterdir()) if outputs.is_dir() else set()
    try:
        with writing_in(outputs):
            return trainer.method.export(trainer.pipe, outputs)
    except WriteFailed as failure:
        _remove_exports([path for path in outputs.iterdir() if path not in before] if outputs.is_dir() else [])
        fail(trainer, f"the exports were not written: {failure}")


def export_trainer(trainer: Any, verify: bool = True) -> list[Path]:
    """Export the method's files into outputs/ and check each as training.export_check says (export_check.py)."""
    check = trainer.training.export_check if verify else "skip"
    check_finite_weights(trainer)  # nothing inf or NaN is ever exported
    set_train_mode(trainer, False)
    prompt = trainer.training.sample_prompts[0] if trainer.training.sample_prompts else trainer.items[0].caption
    if not trainer.training.sample_prompts:  # one that uses what was learnt (a method's own wording, if it has one)
        prompt = trainer.method.training_caption(trainer.training.seed, 0, 0, trainer.items[0].caption)
    resolution = trainer.training.resolution
    reference = None
    with inference_weights(trainer):
        if check == "full":
            reference = render(trainer.pipe, prompt, resolution)
        elif check == "quick":
            reference = one_step(trainer.pipe, prompt, resolution)
    if reference is not None and not np.isfinite(reference).all():
        # finite weights can still overflow when they are huge: the trained model draws NaN
        fail(trainer, f"the trained model renders NaN, so nothing was exported: {divergence_advice(trainer.training)}")
    trainer.method.export_check = check  # a method that checks its own files (a pipeline folder) reads it
    files = _write_exports(trainer)
    for file in files:
        if file.name == KOHYA_FILE:
            for message in kohya_consumer_warnings(file):
                trainer.emit("warning", message=message)
        fields: dict[str, Any] = {"path": str(file.relative_to(trainer.run_dir))}
        if check != "skip" and file.name.endswith(".safetensors") and file.parent.name != "peft":
            if check == "quick":
                fields["max_difference"] = quick_difference(trainer, file, prompt, reference)
            else:
                fields["max_difference"] = full_difference(trainer, file, prompt, reference)
            fields["check"] = check
            if not math.isfinite(fields["max_difference"]):  # NaN > 1e-3 is False: it must be caught here
                _remove_exports(files)
                fail(
                    trainer,
                    f"the export check of {file.name} gave a difference of {fields['max_difference']}, so nothing "
                    f"was exported: {divergence_advice(trainer.training)}",
                )
            if fields["max_difference"] > 1e-3:
                trainer.emit("warning", message=f"{file.name} reloads with a difference of {fields['max_difference']}")
        trainer.emit("export", **fields)
    return files


def full_difference(trainer: Any, file: Path, prompt: str, reference: np.ndarray) -> float:
    """The first check: a fresh base model with the file loaded renders four guided steps; the pixel difference."""
    fresh = load_base_pipeline(trainer.training, "cpu", torch.float32)
    if not lora_exports(trainer):  # a method whose files are not LoRA weights loads them itself
        trainer.method.load_export(fresh, file)
        return max_difference(reference, fresh, prompt, trainer.training.resolution)
    return verify_lora_file(reference, fresh, file, prompt, trainer.training.resolution)
