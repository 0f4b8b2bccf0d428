"""DreamBooth: fine-tune the UNet (optionally the text encoder) on a subject, with prior preservation.

Every micro-batch holds two halves, as in diffusers' `train_dreambooth.py`: instance images with the instance
prompt ("a photo of sks dog") and class images with the class prompt ("a photo of a dog"). The class images are
what the *base* model draws for the class prompt; training on them keeps the model's idea of "a dog" while the
trigger learns the subject (prior preservation). With `use_lora` the same loss trains LoRA adapters instead,
through the LoRA method.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from studio.data.files import write_bytes_atomic, write_json_atomic
from studio.models.loader import resolve_source
from studio.models.saving import save_pipeline_folder
from studio.paths import data_dir
from studio.train import export
from studio.train.conditioning import predict, text_embeddings
from studio.train.data import TrainingImage, batch_at
from studio.train.export_check import pipeline_folder_difference
from studio.train.latents import draw_flips, fill_caches, latent_distribution
from studio.train.methods.base import FrozenVaeMethod, load_parameters, parameters_state_dict, unfreeze_whole_unet
from studio.train.methods.dreambooth.config import DreamBoothConfig, has_word
from studio.train.methods.lora.config import LoraConfig
from studio.train.methods.lora.method import LoraMethod
from studio.train.objective import diffusion_loss, sample_noise, training_target

CLASS_MANIFEST = "manifest.json"
PIPELINE_FOLDER = "pipeline"
CLASS_IMAGES_RECORD = "class_images.json"


# ------------------------------------------------------------------ the loss


def prior_preservation_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    timesteps: torch.Tensor,
    scheduler: Any,
    min_snr_gamma: float,
    prior_loss_weight: float,
    instance_count: int,
) -> torch.Tensor:
    """Loss of the instance half + prior_loss_weight x loss of the class half (the first `instance_count` rows
    are instance images, the rest class images)."""
    instance = diffusion_loss(
        prediction[:instance_count], target[:instance_count], timesteps[:instance_count], scheduler, min_snr_gamma
    )
    prior = diffusion_loss(
        prediction[instance_count:], target[instance_count:], timesteps[instance_count:], scheduler, min_snr_gamma
    )
    return instance + prior_loss_weight * prior


def half_precision_autocast(pipe: Any):
    """Under mixed precision the trained UNet is float32 and the frozen parts half: autocast lets them meet."""
    mixed = pipe.unet.dtype != pipe.vae.dtype
    return torch.autocast(pipe.device.type, dtype=pipe.vae.dtype, enabled=mixed)


# ------------------------------------------------------------------ class images, generated once and cached


def class_images_root() -> Path:
    return data_dir() / "class-images"


def base_model_fingerprint(base_model: str) -> list:
    """What names the base model's weights: its resolved location, and for local files their sizes and times,
    so a retrained model (the pocket model rebuilt in place) gets fresh class images instead of stale ones."""
    source = resolve_source(base_model)
    location = Path(source.location)
    files = sorted(location.glob("unet/*.safetensors")) if location.is_dir() else [location]
    return [
        source.kind,
        source.location,
        [[f.name, f.stat().st_mtime_ns, f.stat().st_size] for f in files if f.is_file()],
    ]


def class_images_dir(base_model: str, class_prompt: str, resolution: int) -> Path:
    """One folder per (base model, class prompt, resolution): a different model draws a different 'dog'."""
    model = base_model_fingerprint(base_model)
    key = hashlib.sha256(json.dumps([model, class_prompt, resolution]).encode()).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9]+", "-", class_prompt.lower()).strip("-")[:40] or "class"
    return class_images_root() / f"{slug}-{resolution}px-{key}"


def _read_manifest(folder: Path) -> list[dict]:
    path = folder / CLASS_MANIFEST
    if not path.is_file():
        return []
    return [i for i in json.loads(path.read_text(encoding="utf-8"))["images"] if (folder / i["file"]).is_file()]


def ensure_class_images(
    pipe: Any,
    base_model: str,
    config: DreamBoothConfig,
    resolution: int,
    emit: Callable[..., Any] = lambda *args, **kwargs: None,
) -> list[TrainingImage]:
    """The class images of every class prompt (its share of `num_class_images`), captioned with their prompt,
    generating (with the base model in `pipe`) only the missing ones.

    Each prompt has its own cached folder, shared with any run that uses the same prompt. Image i of a prompt is
    drawn with seed i, so the set is the same whoever generated it; the manifest is rewritten atomically after
    each image, so an interrupted generation continues where it stopped.
    """
    counts = config.class_image_counts()
    folders = {prompt: class_images_dir(base_model, prompt, resolution) for prompt in counts}
    listed = {prompt: _read_manifest(folder) for prompt, folder in folders.items()}
    total = sum(max(0, counts[prompt] - len(listed[prompt])) for prompt in counts)
    done = 0
    if total:
        emit("progress", task="class_images", done=0, total=total, folder=str(next(iter(folders.values()))))
    for prompt, wanted in counts.items():
        while len(listed[prompt]) < wanted:
            _draw_class_image(pipe, base_model, prompt, config, resolution, folders[prompt], listed[prompt])
            done += 1
            emit("progress", task="class_images", done=done, total=total, folder=str(folders[prompt]))
    return [
        TrainingImage(folders[prompt] / i["file"], prompt, i["sha256"], resolution, resolution)
        for prompt, wanted in counts.items()
        for i in sorted(listed[prompt], key=lambda i: i["seed"])[:wanted]
    ]


def _draw_class_image(
    pipe: Any, base_model: str, prompt: str, config: DreamBoothConfig, resolution: int, folder: Path, images: list
) -> None:
    """One more class image for `prompt` (the next seed), written with the manifest that lists it."""
    pipe.unet.eval()
    pipe.text_encoder.eval()
    seed = max([i["seed"] for i in images], default=-1) + 1
    # generation must not move the training RNG
    with torch.random.fork_rng(devices=[]), torch.no_grad(), half_precision_autocast(pipe):
        image = pipe(
            prompt,
            num_inference_steps=config.class_image_steps,
            guidance_scale=config.class_guidance_scale,
            height=resolution,
            width=resolution,
            generator=torch.Generator("cpu").manual_seed(seed),
        ).images[0]
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    name = f"class-{seed:05d}.png"
    write_bytes_atomic(folder / name, buffer.getvalue())
    images.append({"file": name, "seed": seed, "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()})
    manifest = {"base_model": base_model, "class_prompt": prompt, "resolution": resolution, "images": images}
    write_json_atomic(folder / CLASS_MANIFEST, manifest)


def record_class_images(run_dir: Path, items: list[TrainingImage]) -> None:
    """The run's own list of the class images it trains on (beside dataset.json); a resume must find the same."""
    folders = list(dict.fromkeys(str(i.path.parent) for i in items))  # one per class prompt
    listing = {
        "folder": folders[0],
        "folders": folders,
        "items": [{"file": i.path.name, "sha256": i.sha256, "caption": i.caption} for i in items],
    }
    path = run_dir / CLASS_IMAGES_RECORD
    if not path.is_file():
        write_json_atomic(path, listing)
    elif json.loads(path.read_text(encoding="utf-8"))["items"] != listing["items"]:
        raise ValueError(f"the class images in {', '.join(folders)} changed since this run started; start a new run")


# ------------------------------------------------------------------ the method


class DreamBoothMethod(FrozenVaeMethod):
    name: ClassVar[str] = "dreambooth"
    config_class: ClassVar[type] = DreamBoothConfig

    def __init__(self, config: DreamBoothConfig) -> None:
        self.config = config
        self.class_items: list[TrainingImage] = []
        self.emit: Callable[..., Any] | None = None
        # DreamBooth-LoRA: the LoRA method owns adapters, checkpoints and exports; only the loss is ours
        self.lora = (
            LoraMethod(
                LoraConfig(
                    rank=config.lora_rank,
                    alpha=config.lora_alpha,
                    target_modules=list(config.lora_target_modules),
                    train_text_encoder=config.train_text_encoder,
                )
            )
            if config.use_lora
            else None
        )

    # ---------------------------------------------------------------- what learns

    def setup(self, pipe: Any) -> list[torch.nn.Parameter]:
        if self.lora is not None:
            return self.lora.setup(pipe)
        unfreeze_whole_unet(pipe, self.config.train_text_encoder, self.name)
        return list(self.parameters(pipe).values())

    def parameters(self, pipe: Any) -> dict[str, torch.nn.Parameter]:
        if self.lora is not None:
            return self.lora.parameters(pipe)
        params = {f"unet.{n}": p for n, p in pipe.unet.named_parameters()}
        if self.config.train_text_encoder:
            params.update({f"text_encoder.{n}": p for n, p in pipe.text_encoder.named_parameters()})
        return params

    def trainable_state_dict(self, pipe: Any) -> dict[str, torch.Tensor]:
        return parameters_state_dict(self.parameters(pipe))

    def load_trainable_state_dict(self, pipe: Any, state: dict[str, torch.Tensor]) -> None:
        load_parameters(self.parameters(pipe), state, "model")

    # ---------------------------------------------------------------- data and loss (hooks of the shared loop)

    def prepare(self, trainer: Any) -> None:
        """Before any checkpoint is restored, while `trainer.pipe` still draws like the base model."""
        self.emit = trainer.emit
        training = trainer.training
        if self.config.use_captions:
            untagged = [i.path.name for i in trainer.items if not has_word(i.caption, self.config.trigger)]
            if untagged:
                raise ValueError(
                    f"use_captions: every caption must contain the trigger {self.config.trigger!r}; "
                    f"{len(untagged)} do not (e.g. {untagged[0]})"
                )
        if not self.config.with_prior_preservation:
            trainer.emit(
                "warning",
                message="prior preservation is off: the class word may drift towards your subject "
                "(language drift); turn on with_prior_preservation to keep it",
            )
            return
        self.class_items = ensure_class_images(
            trainer.pipe, training.base_model, self.config, training.resolution, trainer.emit
        )
        record_class_images(trainer.run_dir, self.class_items)
        if trainer.caches is not None:
            fill_caches(
                trainer.pipe,
                self.class_items,
                trainer.caches,
                trainer.accelerator.device,
                trainer.pipe.vae.dtype,
                mirrored=trainer.training.random_flip,
            )

    def micro_batch_loss(self, trainer: Any, position: int) -> torch.Tensor:
        """One micro-batch: instance half (+ class half), one UNet pass, the weighted two-part loss."""
        training, pipe, generator = trainer.training, trainer.pipe, trainer.generator
        device = trainer.accelerator.device
        images = list(batch_at(trainer.items, training.batch_size, training.seed, position))
        if self.config.use_captions:
            prompts = [item.caption for item in images]
        else:
            prompts = [self.config.instance_prompt] * len(images)
        instance_count = len(images)
        if self.class_items:
            # prior-preservation: the class half keeps the model's idea of the class (e.g. 'a dog')
            class_batch = batch_at(self.class_items, training.batch_size, training.seed + 1, position)
            images += class_batch
            prompts += [item.caption for item in class_batch]  # each class image's own class prompt

        flips = draw_flips(len(images), training.random_flip, generator)
        mean, std = latent_distribution(pipe, images, trainer.caches, device, pipe.vae.dtype, flips)
        sample = torch.randn(mean.shape, generator=generator).to(mean)
        latents = (mean + std * sample) * pipe.vae.config.scaling_factor

        # add noise according to each timestep's magnitude; the UNet learns to undo it
        noise = sample_noise(latents, training.offset_noise, generator)
        timesteps = torch.randint(
            0, trainer.noise_scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator
        ).to(device)
        noisy = trainer.noise_scheduler.add_noise(latents, noise, timesteps)
        target = training_target(trainer.noise_scheduler, latents, noise, timesteps)

        drop = torch.rand(len(prompts), generator=generator) < training.caption_dropout
        prompts = ["" if dropped else prompt for prompt, dropped in zip(prompts, drop.tolist())]
        condition = text_embeddings(pipe, prompts, trainer.text_caches, self.trains_text_encoder, device)

        with trainer.accelerator.autocast():
            prediction = predict(pipe, noisy, timesteps, condition)
        if not self.class_items:
            return diffusion_loss(prediction, target, timesteps, trainer.noise_scheduler, training.min_snr_gamma)
        return prior_preservation_loss(
            prediction,
            target,
            timesteps,
            trainer.noise_scheduler,
            training.min_snr_gamma,
            self.config.prior_loss_weight,
            instance_count,
        )

    # ---------------------------------------------------------------- outputs

    def export(self, pipe: Any, outputs: Path) -> list[Path]:
        if self.lora is not None:
            return self.lora.export(pipe, outputs)
        folder = outputs / PIPELINE_FOLDER
        difference = save_pipeline(pipe, folder, self.config.instance_prompt, self.export_check)
        if difference > 1e-3 and self.emit is not None:
            self.emit("warning", message=f"{folder.name} reloads with a difference of {difference}")
        return [folder]


def save_pipeline(pipe: Any, folder: Path, prompt: str, check: str = "full") -> float:
    """A diffusers pipeline folder (safetensors only); returns the largest difference its check found: the
    saved weights against those in memory (quick: no second model in memory), or a whole reload's pixels (full)."""
    resolution = pipe.unet.config.sample_size * pipe.vae_scale_factor
    save_pipeline_folder(pipe, folder)
    if check == "skip":
        return 0.0
    if check == "quick":
        return pipeline_folder_difference(pipe, folder)
    with half_precision_autocast(pipe):
        reference = export.render(pipe, prompt, resolution)
    fresh = type(pipe).from_pretrained(folder).to(pipe.device)
    with half_precision_autocast(fresh):
        return float(np.abs(export.render(fresh, prompt, resolution) - reference).max())
