"""The check that an export reloads as what was trained, sized to its purpose (training.export_check).

Measured at SD 1.5 size on a CPU (BENCHMARKS.md, issue 23), the first check took 45-80 % of a short run's wall
time: it rendered four guided steps and decoded them, then loaded the whole base model again and rendered again,
for every exported file (and a fresh base model doubles the memory a run needs at its very end). What the check
is for is narrower: that the file holds what was trained, and that the loader a user calls reads it back onto the
right layers. So the quick check (the default):

- reads every exported safetensors file back and compares its tensors with the trained ones where a method can say
  what they must be (a Textual Inversion file is nothing but the vectors; a pipeline folder, its weights);
- reloads LoRA files into the trainer's own pipeline, beside the adapter that was trained (a second adapter, made
  the only active one), so no second base model is loaded, and compares one unguided denoising step in latent
  space at 128 px at most: the same step goes through every adapted layer, and no large image, VAE decode or
  classifier-free guidance is needed to see that the file landed on them;
- anything else (SVDiff's shifts, a single-file checkpoint) loads into a fresh base model, one small step again.

`full` keeps the first check (four guided steps in pixels, a fresh base per file); `skip` checks nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.adapters import kohya as lora_keys
from studio.train.loop import load_base_pipeline
from studio.train.methods import facts

CHECK_ADAPTER = "export_check"  # the name a LoRA file is loaded under, beside the trained "default"
# Convolutions and attention apply the same weights at any size, so a step at 128 px goes through every adapted
# layer as one at 1024 px does, at 1/64 of the cost; SD's UNets downsample 8 x 8, and 128 px is 16 latents.
CHECK_RESOLUTION = 128


def check_resolution(resolution: int) -> int:
    return min(resolution, CHECK_RESOLUTION)


def one_step(pipe: Any, prompt: str, resolution: int, seed: int = 0) -> np.ndarray:
    """One unguided denoising step's latents, at most 128 px: deterministic, and a fraction of a guided render."""
    resolution = check_resolution(resolution)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator("cpu").manual_seed(seed)
    with torch.no_grad():
        out = pipe(
            prompt,
            num_inference_steps=1,
            guidance_scale=1.0,  # no classifier-free guidance: one UNet pass, not two
            height=resolution,
            width=resolution,
            generator=generator,
            output_type="latent",  # no VAE decode, which at 512 px costs more than the UNet step
        )
    return out.images[0].float().cpu().numpy()


def finite_file(file: Path) -> bool:
    """Every tensor of a safetensors file reads back and is finite (a truncated file fails to open)."""
    from safetensors import safe_open

    with safe_open(str(file), "pt") as stream:
        return all(bool(torch.isfinite(stream.get_tensor(key)).all()) for key in stream.keys())


def _use_adapter(pipe: Any, name: str) -> None:
    """Make `name` the only active adapter of every adapted part; a part without it runs as its base."""
    for part in ("unet", *lora_keys.TEXT_ENCODERS):
        model = getattr(pipe, part, None)
        adapters = getattr(model, "peft_config", None)
        if not adapters:
            continue
        if name in adapters:
            model.enable_adapters()
            model.set_adapter(name)
        else:
            model.disable_adapters()


def lora_in_place(pipe: Any, file: Path, prompt: str, resolution: int, reference: np.ndarray) -> float:
    """Load a LoRA file beside the trained adapter and compare one step with it alone against `reference`."""
    import warnings

    with warnings.catch_warnings():  # peft warns that a second adapter joins the first: that is the point here
        warnings.filterwarnings("ignore", message=".*multiple adapters.*")
        pipe.load_lora_weights(str(file.parent), weight_name=file.name, adapter_name=CHECK_ADAPTER)
    try:
        _use_adapter(pipe, CHECK_ADAPTER)
        return float(np.abs(one_step(pipe, prompt, resolution) - reference).max())
    finally:
        _use_adapter(pipe, "default")  # back to what was trained, trainable as before
        pipe.delete_adapters(CHECK_ADAPTER)


def pipeline_folder_difference(pipe: Any, folder: Path, parts: tuple[str, ...] = ("unet", "text_encoder")) -> float:
    """The largest difference between a saved pipeline folder's weights and the pipeline in memory, read one
    tensor at a time (a second copy of the model never exists). Text-encoder keys are compared without the
    `text_model.` prefix that the export adds for transformers 4."""
    from safetensors import safe_open

    worst = 0.0
    for part in parts:
        module = getattr(pipe, part, None)
        if module is None or not (folder / part).is_dir():
            continue
        state = {key.removeprefix("text_model."): value for key, value in module.state_dict().items()}
        seen = set()
        for file in sorted((folder / part).glob("*.safetensors")):
            with safe_open(str(file), "pt") as stream:
                for key in stream.keys():
                    name = key.removeprefix("text_model.")
                    if name not in state:
                        return math.inf  # a weight the model does not have: the folder is not this model
                    seen.add(name)
                    saved = stream.get_tensor(key).float()
                    worst = max(worst, float((saved - state[name].detach().float().cpu()).abs().max()))
        # tied weights are written once; anything else missing means the folder lacks part of the model
        missing = [key for key in set(state) - seen if "position_ids" not in key]
        if missing and part == "unet":
            return math.inf
    return worst


def lora_exports(trainer: Any) -> bool:
    """Whether the run's method writes LoRA weights (checked by diffusers' loader) rather than files it loads."""
    return facts(trainer.config).exports == "lora"


def quick_difference(trainer: Any, file: Path, prompt: str, reference: np.ndarray) -> float:
    """The quick check of one exported file (see the module's docstring): the largest difference found."""
    method, resolution = trainer.method, trainer.training.resolution
    if not finite_file(file):
        return math.inf
    difference = method.export_difference(trainer.pipe, file)  # a method that can say what the tensors must be
    if difference is not None:
        return difference
    if lora_exports(trainer):  # LoRA weights, for diffusers' own loader
        return lora_in_place(trainer.pipe, file, prompt, resolution, reference)

    pipe = load_base_pipeline(trainer.training, "cpu", torch.float32)  # the file changes its weights for good
    method.load_export(pipe, file)
    return float(np.abs(one_step(pipe, prompt, resolution) - reference).max())
