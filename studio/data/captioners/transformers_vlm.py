"""Captioners from transformers: BLIP and Florence-2, from a hub id or a local folder.

Both are loaded by their native transformers classes (no `trust_remote_code`): BLIP through
`BlipForConditionalGeneration`, Florence-2 through `Florence2ForConditionalGeneration`, which transformers 5
ships natively; use a checkpoint in that format (e.g. `florence-community/Florence-2-base`, not the original
`microsoft/Florence-2-base`, whose loader is remote code). Weights are read from a local folder or the
Hugging Face cache first; when they are not there and the hub is unreachable, loading fails with one
sentence that says how to get them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from studio.data.captioners.base import Captioner
from studio.models.errors import ModelLoadError
from studio.models.loader import hub_offline

DEFAULT_MODELS = {
    "blip": "Salesforce/blip-image-captioning-base",
    "florence2": "florence-community/Florence-2-base",
}
SUPPORTED_TYPES = ("blip", "florence2")


def _read_config(source: str) -> dict:
    """The model's config.json, from the folder, the cache, or (when allowed) the hub."""
    folder = Path(source)
    if folder.is_dir():
        config = folder / "config.json"
        if not config.is_file():
            raise ModelLoadError(f"'{source}' has no config.json; point at a captioning model folder")
        return json.loads(config.read_text(encoding="utf-8"))
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(source, "config.json", local_files_only=True)
    except OSError:
        if hub_offline():
            raise ModelLoadError(_not_available(source)) from None
        try:
            path = hf_hub_download(source, "config.json")
        except OSError as error:  # no connection, unknown repo, gated repo: all end here
            raise ModelLoadError(_not_available(source)) from error
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _not_available(source: str) -> str:
    return (
        f"Captioner weights for '{source}' are not available offline; download them once with `hf download {source}` "
        "on a connected machine, or pass a local folder, or use the pocket or template captioner."
    )


class TransformersCaptioner(Captioner):
    """BLIP or Florence-2 captions, one sentence per image."""

    def __init__(
        self,
        source: str,
        device: str = "cpu",
        max_new_tokens: int = 40,
        prompt: str | None = None,
        batch_size: int = 4,
    ) -> None:
        source = DEFAULT_MODELS.get(source, source)
        config = _read_config(source)
        self.model_type = config.get("model_type", "")
        if self.model_type not in SUPPORTED_TYPES:
            raise ModelLoadError(
                f"'{source}' is a '{self.model_type or 'unknown'}' model; captioners supported here: "
                f"{', '.join(SUPPORTED_TYPES)}"
            )
        self.name = f"{self.model_type}:{source}"
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        # BLIP: optional text the caption continues ("a photography of"); Florence-2: a caption task token
        # (<CAPTION>, <DETAILED_CAPTION> or <MORE_DETAILED_CAPTION>)
        self.prompt = prompt if prompt is not None else ("<CAPTION>" if self.model_type == "florence2" else None)
        self.model, self.processor = self._load(source)

    def _load(self, source: str):
        from transformers import AutoProcessor

        if self.model_type == "blip":
            from transformers import BlipForConditionalGeneration as model_class
        else:
            from transformers import Florence2ForConditionalGeneration as model_class
        local_only = Path(source).is_dir() or hub_offline()
        try:
            processor = AutoProcessor.from_pretrained(source, local_files_only=local_only)
            model = model_class.from_pretrained(source, local_files_only=local_only)
        except OSError as error:
            raise ModelLoadError(_not_available(source)) from error
        return model.to(self.device).eval(), processor

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        rgb = [image.convert("RGB") for image in images]
        text = None if self.prompt is None else [self.prompt] * len(rgb)
        inputs = self.processor(images=rgb, text=text, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            generated = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        # the caption tasks are plain text (Florence-2's post-processor only strips special tokens for them)
        return [text.strip() for text in self.processor.batch_decode(generated, skip_special_tokens=True)]
