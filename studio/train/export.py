"""LoRA exports users can take elsewhere (safetensors only), and the check that each reloads to the same output.

- diffusers format (`pytorch_lora_weights.safetensors`) through `save_lora_weights`, with peft's adapter config
  stored as metadata so a LoRA whose alpha differs from its rank reloads with the right scale;
- one kohya / AUTOMATIC1111 / ComfyUI file (`lora_unet_…`, `lora_te1_…` keys). diffusers'
  `convert_state_dict_to_kohya` writes `.alpha = rank` for every module (the length of lora_down), which would
  rescale any LoRA trained with alpha != rank; we overwrite each `.alpha` with the true value.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

DIFFUSERS_WEIGHTS = "pytorch_lora_weights.safetensors"


def _adapter_parts(pipe: Any) -> dict[str, torch.nn.Module]:
    """The parts of `pipe` that carry an adapter: the UNet, and the text encoder(s) when they were trained too."""
    parts = {"unet": pipe.unet}
    for name in ("text_encoder", "text_encoder_2"):
        if getattr(getattr(pipe, name, None), "peft_config", None):
            parts[name] = getattr(pipe, name)
    return parts


def save_lora_diffusers(pipe: Any, folder: Path) -> Path:
    from peft.utils import get_peft_model_state_dict

    parts = _adapter_parts(pipe)
    arguments: dict[str, Any] = {}
    for name, module in parts.items():
        # peft's own key names (`…to_q.lora_A.weight`), which load_lora_weights reads as they are. diffusers'
        # convert_state_dict_to_diffusers renames only attention keys to the old `lora.down` style and leaves
        # convolutions as `lora_A`: a file mixing both reloads without the attention LoRA (measured 2026-11-23).
        arguments[f"{name}_lora_layers"] = get_peft_model_state_dict(module)
        arguments[f"{name}_lora_adapter_metadata"] = module.peft_config["default"].to_dict()
    folder.mkdir(parents=True, exist_ok=True)
    # the pipeline's own class: SDXL's save_lora_weights also takes the second text encoder
    type(pipe).save_lora_weights(folder, safe_serialization=True, **arguments)
    return folder / DIFFUSERS_WEIGHTS


def kohya_state_dict(pipe: Any) -> dict[str, torch.Tensor]:
    from diffusers.utils import convert_state_dict_to_kohya
    from peft.utils import get_peft_model_state_dict

    state, alphas = {}, {}
    for name, module in _adapter_parts(pipe).items():
        config = module.peft_config["default"]
        # A1111 and ComfyUI name text-encoder layers under text_model; transformers 5 flattened it away
        prefix = f"{name}.text_model" if name != "unet" and not hasattr(module, "text_model") else name
        for key, value in get_peft_model_state_dict(module).items():
            state[f"{prefix}.{key}"] = value
        alphas[name] = float(config.lora_alpha)
    kohya = convert_state_dict_to_kohya(state)
    for key in kohya:
        if key.endswith(".alpha"):
            part = {"lora_te1": "text_encoder", "lora_te2": "text_encoder_2"}.get(key[:8], "unet")
            kohya[key] = torch.tensor(alphas[part])  # the true alpha, not diffusers' rank
    return {k: v.detach().contiguous() for k, v in kohya.items()}


def save_lora_kohya(pipe: Any, path: Path) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    save_file(kohya_state_dict(pipe), str(temporary), metadata={"ss_network_module": "networks.lora"})
    temporary.replace(path)
    return path


def save_peft_adapter(pipe: Any, folder: Path) -> Path:
    """LoHa / LoKr: peft's own adapter format (diffusers' load_lora_weights does not read these)."""
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = pipe.unet.peft_config["default"].to_dict()
    state = {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(pipe.unet).items()}
    save_file(state, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2, default=list), encoding="utf-8")
    return folder / "adapter_model.safetensors"


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
    from studio.data.files import WriteFailed, writing_in
    from studio.train.loop import fail

    outputs = trainer.run_dir / "outputs"
    before = set(outputs.iterdir()) if outputs.is_dir() else set()
    try:
        with writing_in(outputs):
            return trainer.method.export(trainer.pipe, outputs)
    except WriteFailed as failure:
        _remove_exports([path for path in outputs.iterdir() if path not in before] if outputs.is_dir() else [])
        fail(trainer, f"the exports were not written: {failure}")


def export_trainer(trainer: Any, verify: bool = True) -> list[Path]:
    """Export the method's files into outputs/ and check that each reloads to the in-memory output."""
    from studio.train.loop import (
        check_finite_weights,
        divergence_advice,
        fail,
        inference_weights,
        load_base_pipeline,
        set_train_mode,
    )

    check_finite_weights(trainer)  # nothing inf or NaN is ever exported
    set_train_mode(trainer, False)
    prompt = trainer.training.sample_prompts[0] if trainer.training.sample_prompts else trainer.items[0].caption
    if not trainer.training.sample_prompts and hasattr(trainer.method, "training_caption"):
        prompt = trainer.method.training_caption(trainer.training.seed, 0, 0)  # one that uses what was learnt
    with inference_weights(trainer):
        reference = render(trainer.pipe, prompt, trainer.training.resolution) if verify else None
    if reference is not None and not np.isfinite(reference).all():
        # finite weights can still overflow when they are huge: the trained model draws NaN
        fail(trainer, f"the trained model renders NaN, so nothing was exported: {divergence_advice(trainer.training)}")
    files = _write_exports(trainer)
    for file in files:
        fields: dict[str, Any] = {"path": str(file.relative_to(trainer.run_dir))}
        if verify and file.name.endswith(".safetensors") and file.parent.name != "peft":
            fresh = load_base_pipeline(trainer.training, "cpu", torch.float32)
            if hasattr(trainer.method, "load_export"):  # a method whose files are not LoRA weights
                trainer.method.load_export(fresh, file)
                fields["max_difference"] = max_difference(reference, fresh, prompt, trainer.training.resolution)
            else:
                fields["max_difference"] = verify_lora_file(reference, fresh, file, prompt, trainer.training.resolution)
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
