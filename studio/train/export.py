"""LoRA and pipeline exports users can take elsewhere (safetensors only), and the check that each reloads the same.

Every file is written the way the tools that read it expect (tests/consumer_rules.py restates their rules):

- diffusers format (`pytorch_lora_weights.safetensors`) through `save_lora_weights`, with the text encoder under
  `text_encoder.text_model.…` as diffusers itself writes it (diffusers 0.32 cannot find the layers otherwise) and
  the scale alpha / rank baked into lora_B, so a reader that ignores the adapter metadata (older diffusers) still
  applies the right scale; the metadata then says alpha = rank;
- one kohya file (`lora-kohya.safetensors`) for sd-scripts, AUTOMATIC1111 / Forge and ComfyUI, named by
  `lora_keys.kohya_state_dict` with sd-scripts' `ss_*` metadata; layers sd-scripts cannot apply are named in a warning;
- pipeline folders (DreamBooth, full fine-tune, the pocket model) with transformers 4's text-encoder key names and
  the tokenizer's vocab.json + merges.txt beside tokenizer.json, so transformers 4.4x-5.x all read them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.train import lora_keys

DIFFUSERS_WEIGHTS = "pytorch_lora_weights.safetensors"
KOHYA_FILE = "lora-kohya.safetensors"


def _adapter_parts(pipe: Any) -> dict[str, torch.nn.Module]:
    """The parts of `pipe` that carry an adapter: the UNet, and the text encoder(s) when they were trained too."""
    parts = {"unet": pipe.unet}
    for name in lora_keys.TEXT_ENCODERS:
        if getattr(getattr(pipe, name, None), "peft_config", None):
            parts[name] = getattr(pipe, name)
    return parts


def baked_lora_layers(module: torch.nn.Module, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The LoRA of pipeline part `name` (unet, text_encoder, text_encoder_2) as `save_lora_weights` takes it: peft's
    key names (a text encoder's from `text_model.`), each layer's scale multiplied into lora_B, and adapter
    metadata that says alpha = rank (scale 1) to go with it."""
    from peft.tuners.lora import LoraLayer
    from peft.utils import get_peft_model_state_dict

    state = get_peft_model_state_dict(module)
    for path, layer in module.named_modules():
        if isinstance(layer, LoraLayer) and f"{path}.lora_B.weight" in state:
            state[f"{path}.lora_B.weight"] = state[f"{path}.lora_B.weight"] * layer.scaling["default"]
    state = lora_keys.with_text_model({f"{name}.{key}": value for key, value in state.items()})
    config = module.peft_config["default"].to_dict()
    config.update(lora_alpha=config["r"], alpha_pattern=dict(config.get("rank_pattern") or {}), use_rslora=False)
    return {key[len(name) + 1 :]: value.contiguous() for key, value in state.items()}, config


def save_lora_diffusers(pipe: Any, folder: Path) -> Path:
    arguments: dict[str, Any] = {}
    for name, module in _adapter_parts(pipe).items():
        # peft's own key names (`…to_q.lora_A.weight`), which load_lora_weights reads as they are. diffusers'
        # convert_state_dict_to_diffusers renames only attention keys to the old `lora.down` style and leaves
        # convolutions as `lora_A`: a file mixing both reloads without the attention LoRA (measured 2026-11-23).
        arguments[f"{name}_lora_layers"], arguments[f"{name}_lora_adapter_metadata"] = baked_lora_layers(module, name)
    folder.mkdir(parents=True, exist_ok=True)
    # the pipeline's own class: SDXL's save_lora_weights also takes the second text encoder
    type(pipe).save_lora_weights(folder, safe_serialization=True, **arguments)
    return folder / DIFFUSERS_WEIGHTS


def kohya_state_dict(pipe: Any) -> dict[str, torch.Tensor]:
    from peft.utils import get_peft_model_state_dict

    state, alphas = {}, {}
    for name, module in _adapter_parts(pipe).items():
        state.update({f"{name}.{key}": value for key, value in get_peft_model_state_dict(module).items()})
        alphas[name] = float(module.peft_config["default"].lora_alpha)
    return lora_keys.kohya_state_dict(state, alphas, sdxl=getattr(pipe, "text_encoder_2", None) is not None)


def kohya_file_metadata(pipe: Any, kohya: dict[str, torch.Tensor]) -> dict[str, str]:
    """sd-scripts' `ss_*` fields for a kohya state dict made on `pipe`'s base model."""
    from studio.models.single_file import pipeline_family

    v_prediction = pipe.scheduler.config.get("prediction_type") == "v_prediction"
    return lora_keys.kohya_metadata(kohya, str(pipeline_family(pipe)), v_prediction)


def save_lora_kohya(pipe: Any, path: Path) -> Path:
    state = kohya_state_dict(pipe)
    return save_safetensors(state, path, kohya_file_metadata(pipe, state))


def save_safetensors(state: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> Path:
    """Write through a temporary file, so a reader never sees half a file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    save_file(state, str(temporary), metadata=metadata)
    temporary.replace(path)
    return path


def kohya_consumer_warnings(path: Path) -> list[str]:
    """What a reader of this kohya file should know: the layers kohya sd-scripts silently leaves out."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as stream:
        ignored = lora_keys.sd_scripts_ignored(list(stream.keys()))
    if not ignored:
        return []
    return [
        f"{path.name}: kohya sd-scripts skips {', '.join(ignored)} (outside every block it adapts), so there it "
        "acts as a weaker LoRA; ComfyUI, A1111 / Forge and diffusers apply every layer"
    ]


# ------------------------------------------------------------------ pipeline folders


def save_pipeline_folder(pipe: Any, folder: Path) -> Path:
    """`save_pretrained` (safetensors), then what older readers need: transformers 4 key names, vocab.json + merges.txt."""
    pipe.save_pretrained(folder, safe_serialization=True)
    for name in lora_keys.TEXT_ENCODERS:
        if type(getattr(pipe, name, None)).__name__ == "CLIPTextModel":
            _text_model_keys(folder / name)
    for name in ("tokenizer", "tokenizer_2"):
        tokenizer = getattr(pipe, name, None)
        if tokenizer is not None and (folder / name).is_dir():
            write_vocab_and_merges(tokenizer, folder / name)
    return folder


def _text_model_keys(folder: Path) -> None:
    """transformers 5 writes CLIPTextModel's weights as `encoder.…`; 4 reads only `text_model.encoder.…` (and 5
    reads both), so rename them in place."""
    from safetensors import safe_open

    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), "pt") as stream:
            metadata = stream.metadata() or {}
            keys = list(stream.keys())
            if all(key.startswith(("text_model.", "text_projection.")) for key in keys):
                continue
            state = {f"text_encoder.{key}": stream.get_tensor(key) for key in keys}
        state = {key.split(".", 1)[1]: value for key, value in lora_keys.with_text_model(state).items()}
        save_safetensors(state, file, metadata)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        content = json.loads(index.read_text(encoding="utf-8"))
        renamed = lora_keys.with_text_model({f"text_encoder.{k}": v for k, v in content["weight_map"].items()})
        content["weight_map"] = {key.split(".", 1)[1]: value for key, value in renamed.items()}
        index.write_text(json.dumps(content, indent=2), encoding="utf-8")


def write_vocab_and_merges(tokenizer: Any, folder: Path) -> None:
    """CLIP's vocab.json + merges.txt, from the BPE model behind tokenizer.json (transformers 5 writes only that)."""
    if not ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()):
        tokenizer.backend_tokenizer.model.save(str(folder))


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
    """Export the method's files into outputs/ and check each as training.export_check says (export_check.py)."""
    from studio.train.export_check import one_step, quick_difference
    from studio.train.loop import check_finite_weights, divergence_advice, fail, inference_weights, set_train_mode

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
    from studio.train.export_check import lora_exports
    from studio.train.loop import load_base_pipeline

    fresh = load_base_pipeline(trainer.training, "cpu", torch.float32)
    if not lora_exports(trainer):  # a method whose files are not LoRA weights loads them itself
        trainer.method.load_export(fresh, file)
        return max_difference(reference, fresh, prompt, trainer.training.resolution)
    return verify_lora_file(reference, fresh, file, prompt, trainer.training.resolution)
