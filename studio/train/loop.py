"""The training loop every method shares: noise, timesteps, loss, accumulation, checkpoints, resume, commands.

Kept as plain functions so a reader can follow one step from top to bottom. A method (methods/<name>/) only
decides what is trainable and what is exported; everything here is the same for all of them.

Determinism: every random draw of the loop (latent sampling, noise, timesteps, caption dropout) comes from one
`torch.Generator` whose state is checkpointed; the data order is a pure function of (seed, position); torch's,
numpy's and Python's global RNG states are checkpointed too (peft's dropout uses torch's). So on CPU a run
cancelled at step k and resumed ends bit-identical to one never interrupted.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import torch

from studio import runs
from studio.adapters.merge import merge_into_base
from studio.data.files import WriteFailed, write_bytes_atomic
from studio.models import load_pipeline
from studio.runs.checkpoints import (
    checkpoint_name,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
)
from studio.train import distributed
from studio.train.conditioning import Caches, predict, text_embeddings
from studio.train.config import TrainingConfig, load_config_file
from studio.train.data import batch_at, load_training_images
from studio.train.latents import draw_flips, fill_caches, latent_distribution
from studio.train.methods import method_class
from studio.train.objective import diffusion_loss, sample_noise, training_target
from studio.train.trainer_state import Trainer, checkpoint_state, restore

OOM_ADVICE = (
    "out of GPU memory: lower batch_size (use gradient_accumulation to keep the effective batch), "
    "turn on gradient_checkpointing, use mixed_precision fp16/bf16, optimizer adamw8bit, or a lower resolution"
)


class TrainingStopped(Exception):
    """The run stopped with a recorded reason (failed event already written)."""


def build_optimizer(params: list[torch.nn.Parameter] | list[dict], training: TrainingConfig, fused: bool = True):
    if training.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise ValueError(
                "optimizer adamw8bit needs bitsandbytes (pip install bitsandbytes, CUDA only); or use adamw"
            ) from None
        return bnb.optim.AdamW8bit(params, lr=training.learning_rate, weight_decay=training.adam_weight_decay)
    # PyTorch's fused AdamW (one kernel for all tensors, CPU and CUDA): on the pocket LoRA's 240 tensors a step takes
    # 1.9 ms against 12 ms for the default per-tensor loop on CPU (2026-11-23). DeepSpeed brings its own optimizer.
    return torch.optim.AdamW(
        params, lr=training.learning_rate, weight_decay=training.adam_weight_decay, fused=fused or None
    )


def load_base_pipeline(training: TrainingConfig, device: str, dtype: torch.dtype) -> Any:
    """The base model with the config's `base_loras` merged in: what the method's weights learn on top of."""
    pipe = load_pipeline(training.base_model, device=device, dtype=dtype).pipe
    if training.base_loras:
        merge_into_base(pipe, training.base_loras)
    return pipe


def prepare_trainer(run_dir: Path, on_event: Callable[[dict], None] | None = None) -> Trainer:
    """Load the model, add the method's trainable parts, build optimizer and schedule, restore a checkpoint."""
    from accelerate import Accelerator
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler

    watcher = runs.CommandWatcher(run_dir)
    config = load_config_file(run_dir / runs.CONFIG)
    training = config.training
    cpu = training.device == "cpu" or (training.device == "auto" and not torch.cuda.is_available())
    if training.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device is cuda but no CUDA GPU is available; use device auto or cpu")
    if cpu and training.mixed_precision != "no":
        raise ValueError(f"mixed_precision {training.mixed_precision} needs a GPU; use 'no' on CPU")
    deepspeed = distributed.deepspeed_requested()
    if deepspeed:
        distributed.require_deepspeed()
    # accelerate turns DeepSpeed off when told cpu=True; DeepSpeed then picks its own device (DS_ACCELERATOR)
    accelerator = Accelerator(mixed_precision=training.mixed_precision, cpu=cpu and not deepspeed)
    distributed.check_process_count(accelerator.num_processes)
    if accelerator.distributed_type.value == "FSDP":  # refused before the (slow) model load
        distributed.refuse_unsupported(accelerator, None, [], config.method)
    seed_everything(training.seed)

    manifest = json.loads((run_dir / runs.DATASET).read_text(encoding="utf-8"))
    items = load_training_images(manifest["source"], training.resolution)
    if [i.sha256 for i in items] != [i["sha256"] for i in manifest["items"]]:
        raise ValueError(f"the dataset {manifest['source']!r} changed since this run started; start a new run")

    if training.attention == "xformers":  # checked before the (slow) model load
        import importlib.util

        if importlib.util.find_spec("xformers") is None:
            raise ValueError("attention xformers needs the xformers package (pip install xformers); or use sdpa")
    weight_dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[training.mixed_precision]
    pipe = load_base_pipeline(training, str(accelerator.device), weight_dtype)
    pipe.set_progress_bar_config(disable=True)
    # training noise: DDPM with the model's own betas and prediction type
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    method = method_class(config.method)(config.method_config)
    params = method.setup(pipe)
    if training.gradient_checkpointing:
        pipe.unet.enable_gradient_checkpointing()
    if training.attention == "xformers":
        pipe.enable_xformers_memory_efficient_attention()

    distributed.refuse_unsupported(accelerator, pipe, params, config.method)

    # a method may give parts their own learning rate (SVDiff's text-encoder shifts); plain methods give one group
    groups = method.parameter_groups(training.learning_rate) or params
    optimizer = build_optimizer(groups, training, fused=not deepspeed and accelerator.device.type in ("cpu", "cuda"))
    engine = None
    if accelerator.distributed_type.value == "DEEPSPEED":
        distributed.configure_deepspeed(
            accelerator,
            training.batch_size,
            training.gradient_accumulation,
            training.max_grad_norm,
            training.mixed_precision,
        )
        # DeepSpeed takes the trained module and its optimizer together: ZeRO partitions the optimizer state and,
        # with offload, replaces torch's AdamW by its CPU Adam. So the schedule is built afterwards, on the
        # optimizer that really steps (one built before would move the learning rate of the replaced one).
        engine, optimizer = accelerator.prepare(pipe.unet, optimizer)
        lr_scheduler = get_scheduler(
            training.lr_scheduler,
            engine.optimizer.optimizer,
            num_warmup_steps=training.warmup_steps,
            num_training_steps=training.steps,
        )
    else:
        lr_scheduler = get_scheduler(
            training.lr_scheduler, optimizer, num_warmup_steps=training.warmup_steps, num_training_steps=training.steps
        )
        optimizer, lr_scheduler = accelerator.prepare(optimizer, lr_scheduler)
    # each process draws its own noise (process 0 is the single-process run)
    generator = torch.Generator("cpu").manual_seed(training.seed + 1_000_003 * accelerator.process_index)
    caches = Caches() if training.cache_latents and not method.trains_vae else None
    if caches is not None:
        fill_caches(pipe, items, caches, accelerator.device, pipe.vae.dtype, mirrored=training.random_flip)
    trainer = Trainer(
        run_dir,
        config,
        pipe,
        method,
        noise_scheduler,
        items,
        accelerator,
        optimizer,
        lr_scheduler,
        params,
        generator,
        caches,
        Caches(),
        on_event=on_event,
        watcher=watcher,
        engine=engine,
    )
    # a save cut short (SIGKILL, power loss) left a hidden folder: never listed, cleared here
    for leftover in (run_dir / "checkpoints").glob(".step-*.tmp") if accelerator.is_main_process else []:
        shutil.rmtree(leftover, ignore_errors=True)
    # a method's own data (DreamBooth's class images), from the base model
    with accelerator.main_process_first():  # the main process draws class images, the others reuse them
        method.prepare(trainer)
    checkpoints = list_checkpoints(run_dir)
    if checkpoints:
        restore(trainer, load_checkpoint(checkpoints[-1]), checkpoints[-1])
    return trainer


def divergence_advice(training: TrainingConfig) -> str:
    return (
        f"the training diverged; lower the learning_rate (now {training.learning_rate:g}), "
        f"e.g. to {training.learning_rate / 10:g}"
    )


def check_finite_weights(trainer: Trainer) -> None:
    """Stop the run as failed when a trained value is inf or NaN (a learning rate far too high does it in one
    step, before any loss shows it), so no checkpoint or export ever holds one."""
    bad = sum(int((~torch.isfinite(p.detach())).sum()) for p in trainer.params)
    if bad:
        fail(
            trainer,
            f"{bad} trained values became inf or NaN by step {trainer.step}: {divergence_advice(trainer.training)}",
        )


def save(trainer: Trainer) -> Path | None:
    """A resumable checkpoint, written by the main process (the others hold the same weights) while they wait."""
    check_finite_weights(trainer)  # every process holds the same weights, so every process stops here alike
    folder = None
    building = None
    if trainer.engine is not None:
        # every process writes its partition of the optimizer state into the same hidden folder, which the main
        # process then completes and renames into place like any other checkpoint
        building = distributed.save_deepspeed_checkpoint(
            trainer.accelerator, trainer.engine, trainer.run_dir, trainer.step
        )
    if trainer.accelerator.is_main_process:
        try:
            folder = save_checkpoint(
                trainer.run_dir, checkpoint_state(trainer), trainer.training.keep_checkpoints, building=building
            )
        except WriteFailed as failure:  # a full or read-only disk: the run stops, resumable from the last one
            fail(trainer, f"the checkpoint of step {trainer.step} was not saved: {failure}")
        trainer.emit("checkpoint", step=trainer.step, path=str(folder.relative_to(trainer.run_dir)))
    trainer.accelerator.wait_for_everyone()
    return folder


def micro_batch_loss(trainer: Trainer, position: int) -> torch.Tensor:
    """One micro-batch from pixels to loss."""
    own = trainer.method.micro_batch_loss(trainer, position)  # a method's own batches (DreamBooth's two halves)
    if own is not None:
        return own
    training, pipe, generator = trainer.training, trainer.pipe, trainer.generator
    device = trainer.accelerator.device
    batch = batch_at(trainer.items, training.batch_size, training.seed, position)

    # images -> latents: sample from the VAE's distribution each step (the cache holds mean and std)
    flips = draw_flips(len(batch), training.random_flip, generator)
    mean, std = latent_distribution(pipe, batch, trainer.caches, device, pipe.vae.dtype, flips)
    sample = torch.randn(mean.shape, generator=generator).to(mean)
    latents = (mean + std * sample) * pipe.vae.config.scaling_factor

    # add noise according to each timestep's magnitude; the UNet learns to undo it
    noise = sample_noise(latents, training.offset_noise, generator)
    timesteps = torch.randint(
        0, trainer.noise_scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator
    ).to(device)
    noisy = trainer.noise_scheduler.add_noise(latents, noise, timesteps)
    target = training_target(trainer.noise_scheduler, latents, noise, timesteps)

    # caption dropout: some samples see an empty prompt, so the model keeps its unconditional branch for CFG
    drop = torch.rand(len(batch), generator=generator) < training.caption_dropout
    # a method may word the captions itself (Textual Inversion); the others train with each image's own
    captions = [
        "" if dropped else trainer.method.training_caption(training.seed, position, i, item.caption)
        for i, (item, dropped) in enumerate(zip(batch, drop.tolist()))
    ]
    condition = text_embeddings(pipe, captions, trainer.text_caches, trainer.method.trains_text_encoder, device)

    with trainer.accelerator.autocast():
        prediction = predict(pipe, noisy, timesteps, condition)
    return diffusion_loss(prediction, target, timesteps, trainer.noise_scheduler, training.min_snr_gamma)


def optimizer_step(trainer: Trainer) -> float:
    """Gradient accumulation over micro-batches, clipping, one optimizer step; returns the mean loss."""
    training = trainer.training
    total = 0.0
    for micro in range(training.gradient_accumulation):
        position = trainer.step * training.gradient_accumulation + micro
        # with several processes each takes its own micro-batches (one process: position unchanged)
        accelerator = trainer.accelerator
        position = position * accelerator.num_processes + accelerator.process_index
        loss = micro_batch_loss(trainer, position)
        # every process sees the mean loss, so a NaN on one stops them all at the same step
        shared_loss = accelerator.reduce(loss.detach(), reduction="mean") if accelerator.num_processes > 1 else loss
        if not torch.isfinite(shared_loss):
            fail(trainer, f"loss became {loss.item()} at step {trainer.step + 1}: {divergence_advice(training)}")
        if trainer.engine is not None:
            # DeepSpeed divides by the accumulation itself, reduces, clips and steps at the last micro-batch
            last = micro == training.gradient_accumulation - 1
            accelerator.deepspeed_engine_wrapped.backward(loss, sync_gradients=last)
        else:
            # scaled so the accumulated gradient is the mean over the effective batch
            trainer.accelerator.backward(loss / training.gradient_accumulation)
        total += shared_loss.item()
    if trainer.engine is None:
        distributed.average_gradients(trainer.accelerator, trainer.params)
        if training.max_grad_norm:
            trainer.accelerator.clip_grad_norm_(trainer.params, training.max_grad_norm)
    trainer.optimizer.step()  # under DeepSpeed a no-op: the engine stepped in backward
    trainer.method.after_optimizer_step(trainer.pipe)  # e.g. Textual Inversion restores the frozen rows
    trainer.lr_scheduler.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.step += 1
    return total / training.gradient_accumulation


def render_samples(trainer: Trainer) -> None:
    """Validation prompts with a fixed seed, so samples of successive steps are comparable."""
    training = trainer.training
    if not trainer.accelerator.is_main_process:  # one process renders; the others wait for it
        trainer.accelerator.wait_for_everyone()
        return
    set_train_mode(trainer, False)
    # sampling must not move the training RNG: fork it and give the pipeline its own generator
    # autocast: a fully trained UNet is float32 beside half-precision frozen parts under mixed precision
    with (
        torch.random.fork_rng(devices=[]),
        torch.no_grad(),
        trainer.accelerator.autocast(),
        inference_weights(trainer),
    ):
        for index, prompt in enumerate(training.sample_prompts):
            generator = torch.Generator("cpu").manual_seed(training.sample_seed + index)
            image = trainer.pipe(
                prompt,
                num_inference_steps=training.sample_steps,
                height=training.resolution,
                width=training.resolution,
                generator=generator,
            ).images[0]
            path = trainer.run_dir / "samples" / f"{checkpoint_name(trainer.step)}-{index}.png"
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            write_bytes_atomic(path, buffer.getvalue())
            trainer.emit("sample", step=trainer.step, path=str(path.relative_to(trainer.run_dir)), prompt=prompt)
    set_train_mode(trainer, True)
    trainer.accelerator.wait_for_everyone()


def inference_weights(trainer: Trainer):
    """The weights samples and exports draw with: a method's EMA average when it keeps one, else the live ones."""
    return trainer.method.inference_weights(trainer.pipe)


def set_train_mode(trainer: Trainer, training: bool) -> None:
    """Adapter dropout on while training, off for samples and exports; frozen parts always in eval mode."""
    trainer.pipe.unet.train(training)
    for encoder in (trainer.pipe.text_encoder, getattr(trainer.pipe, "text_encoder_2", None)):
        if encoder is not None:
            encoder.train(training and trainer.method.trains_text_encoder)


def fail(trainer: Trainer, reason: str) -> NoReturn:
    with contextlib.suppress(OSError):  # on a full disk the event may not be written either; the reason still is
        trainer.emit("failed", step=trainer.step, reason=reason)
    raise TrainingStopped(reason)


def train(trainer: Trainer) -> str:
    """Run from trainer.step to the configured steps. Returns "finished" or "cancelled"."""
    training = trainer.training
    watcher = trainer.watcher or runs.CommandWatcher(trainer.run_dir)
    trainer.emit("started", step=trainer.step, total_steps=training.steps, pid=os.getpid(), resumed=trainer.step > 0)
    set_train_mode(trainer, True)
    last_saved = trainer.step
    pending = distributed.broadcast_commands(trainer.accelerator, watcher.poll())  # sent while the model loaded
    if "cancel" in pending:  # nothing trained yet, nothing to save
        trainer.emit("cancelled", step=trainer.step, reason="cancelled before the first step")
        return "cancelled"
    try:
        while trainer.step < training.steps:
            started = time.perf_counter()
            loss = optimizer_step(trainer)
            if trainer.step % training.log_every == 0 or trainer.step == training.steps:
                trainer.emit(
                    "step",
                    step=trainer.step,
                    loss=loss,
                    lr=trainer.lr_scheduler.get_last_lr()[0],
                    seconds=round(time.perf_counter() - started, 4),
                )
            commands = distributed.broadcast_commands(trainer.accelerator, watcher.poll()) | pending
            pending = set()
            if "cancel" in commands:
                if last_saved != trainer.step:
                    save(trainer)
                trainer.emit("cancelled", step=trainer.step)
                return "cancelled"
            if (training.checkpoint_every and trainer.step % training.checkpoint_every == 0) or "save_now" in commands:
                save(trainer)
                last_saved = trainer.step
            if (training.sample_every and trainer.step % training.sample_every == 0) or (
                "sample_now" in commands and training.sample_prompts
            ):
                render_samples(trainer)
    except torch.cuda.OutOfMemoryError:
        fail(trainer, OOM_ADVICE)
    except KeyboardInterrupt:
        # Ctrl-C may land half-way through a step, so nothing is saved: the last checkpoint is what resumes
        trainer.emit("cancelled", step=last_saved, reason=runs.KEYBOARD_INTERRUPT)
        raise
    if last_saved != trainer.step:
        save(trainer)  # the final weights, resumable and exportable
    if not distributed.weights_in_sync(trainer.accelerator, trainer.params):
        trainer.emit("warning", message="the processes ended with different weights; do not trust this run's output")
    return "finished"
