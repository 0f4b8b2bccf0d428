"""Scores on real models, as in the DreamBooth paper: CLIP-I, CLIP-T and (when given) DINO.

- CLIP-I / DINO: mean cosine similarity of image embeddings (samples vs training images for subject fidelity;
  each prior sample vs the base model's at the same seed for prior preservation);
- CLIP-T: mean cosine similarity of each context sample with its prompt (the trigger replaced by the class).
Models load with transformers from a hub id (the local cache when offline) or a local folder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from studio.evaluate.prompts import EvalPrompt


def _load(kind: str, name: str | Path, loader) -> object:
    try:
        return loader(str(name))
    except (OSError, ValueError) as error:
        raise ValueError(
            f"cannot load the {kind} model {str(name)!r}: it is neither a local folder with one nor in the hub "
            f"cache (offline or no such id); download it once or pass a folder ({type(error).__name__})"
        ) from None


class EmbeddingJudge:
    """A CLIP model (image and text towers) and optionally a DINO ViT for image-image similarity."""

    def __init__(self, clip: str | Path, dino: str | Path | None = None, device: str = "cpu") -> None:
        from transformers import AutoImageProcessor, AutoModel, CLIPModel, CLIPProcessor

        self.device = device
        self.clip = _load("CLIP", clip, CLIPModel.from_pretrained).to(device).eval()
        self.clip_processor = _load("CLIP processor", clip, CLIPProcessor.from_pretrained)
        self.dino = self.dino_processor = None
        if dino:
            self.dino = _load("DINO", dino, AutoModel.from_pretrained).to(device).eval()
            self.dino_processor = _load("DINO image processor", dino, AutoImageProcessor.from_pretrained)

    @torch.no_grad()
    def clip_images(self, images: list[Image.Image]) -> torch.Tensor:
        inputs = self.clip_processor(images=[i.convert("RGB") for i in images], return_tensors="pt").to(self.device)
        return _normalised(self.clip.get_image_features(**inputs).pooler_output)

    @torch.no_grad()
    def clip_texts(self, texts: list[str]) -> torch.Tensor:
        inputs = self.clip_processor(text=texts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        return _normalised(self.clip.get_text_features(**inputs).pooler_output)

    @torch.no_grad()
    def dino_images(self, images: list[Image.Image]) -> torch.Tensor | None:
        if self.dino is None:
            return None
        inputs = self.dino_processor(images=[i.convert("RGB") for i in images], return_tensors="pt").to(self.device)
        return _normalised(self.dino(**inputs).last_hidden_state[:, 0])  # the CLS token, as the paper uses


def _normalised(features: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(features.float(), dim=-1)


def _pairwise_mean(a: torch.Tensor | None, b: torch.Tensor | None) -> float | None:
    if a is None or b is None or not len(a) or not len(b):
        return None
    return float((a @ b.T).mean())


def _paired_mean(a: torch.Tensor | None, b: torch.Tensor | None) -> float | None:
    if a is None or b is None or not len(a):
        return None
    return float((a * b).sum(dim=-1).mean())


def embedding_scores(
    judge: EmbeddingJudge,
    prompts: list[EvalPrompt],
    images: list[Image.Image],
    base_images: list[Image.Image],
    training: list[Path],
) -> dict:
    def pick(group: str, source: list[Image.Image]) -> list[Image.Image]:
        return [image for prompt, image in zip(prompts, source) if prompt.group == group]

    subject, context, prior = pick("subject", images), pick("context", images), pick("prior", images)
    base_prior = pick("prior", base_images)
    references = []
    for path in training:
        with Image.open(path) as image:
            references.append(image.convert("RGB"))
    clip_i = _pairwise_mean(judge.clip_images(subject), judge.clip_images(references)) if subject else None
    dino = _pairwise_mean(judge.dino_images(subject), judge.dino_images(references)) if subject else None
    context_texts = [p.text for p in prompts if p.group == "context"]
    clip_t = _paired_mean(judge.clip_images(context), judge.clip_texts(context_texts)) if context else None
    prior_clip = _paired_mean(judge.clip_images(prior), judge.clip_images(base_prior)) if prior else None
    prior_dino = _paired_mean(judge.dino_images(prior), judge.dino_images(base_prior)) if prior else None
    return {
        "subject_fidelity": dino if dino is not None else clip_i,
        "prompt_fidelity": clip_t,
        "prior_preservation": prior_dino if prior_dino is not None else prior_clip,
        "clip_i": clip_i,
        "clip_t": clip_t,
        "dino": dino,
        "prior_clip_i": prior_clip,
        "prior_dino": prior_dino,
    }
