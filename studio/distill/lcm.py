"""Latent consistency distillation into a LoRA (LCM-LoRA), scaled down for the pocket model on a CPU.

The recipe is diffusers' `examples/consistency_distillation/train_lcm_distill_lora_sd_wds.py` (Luo et al. 2023,
"LCM-LoRA"), step for step:
- the teacher is the frozen base UNet itself: the same module with its adapters switched off;
- a latent is noised to a timestep t_{n+k} on the coarse DDIM grid (k = 1000 / ddim_timesteps timesteps apart);
- the teacher, with classifier-free guidance at a w drawn per image, takes one DDIM step to t_n;
- the student (base + LoRA) must map both points to the same clean latent: its prediction at t_{n+k} is pulled
  towards its own prediction at t_n (computed without gradient), each mixed with the input by the consistency
  model's boundary scalings c_skip / c_out so that at t = 0 the model is the identity;
- pseudo-Huber (or L2) loss.

What differs, and why:
- the unconditional teacher branch uses the encoded empty prompt, not zeros: the pocket model learned its
  unconditional prediction from empty captions (caption dropout), and its pipeline uses "" at inference;
- the data are shapes-world latents encoded once by the pocket VAE (as pretraining does), with text embeddings
  computed once per distinct caption (the text encoder is frozen), so a step costs only UNet passes;
- each step's batch, noise, timesteps and guidance come from a generator seeded by (seed, step), so a resumed run
  repeats the draws of an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from studio.adapters.lora_files import baked_lora_layers
from studio.distill.config import LcmDistillConfig
from studio.models import load_pipeline
from studio.pocket import world
from studio.pocket.pretrain import _to_tensor
from studio.runs.layout import LORA_FILE

STATE_FILE = "state.pt"
LATENTS_FILE = "latents.pt"
LOG_FILE = "log.jsonl"


class DDIMSolver:
    """The coarse timestep grid and the deterministic DDIM step the teacher takes along it."""

    def __init__(self, alphas_cumprod: torch.Tensor, ddim_timesteps: int) -> None:
        total = len(alphas_cumprod)
        step_ratio = total // ddim_timesteps
        # the same grid LCMScheduler samples from (original_inference_steps=50 -> 19, 39, ..., 999)
        self.timesteps = torch.arange(1, ddim_timesteps + 1) * step_ratio - 1
        self.alphas_cumprod_prev = torch.cat([alphas_cumprod[:1], alphas_cumprod[self.timesteps[:-1]]])
        self.step_ratio = step_ratio

    def step(self, pred_x0: torch.Tensor, pred_noise: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        alpha_prev = self.alphas_cumprod_prev[index].view(-1, 1, 1, 1)
        return alpha_prev.sqrt() * pred_x0 + (1 - alpha_prev).sqrt() * pred_noise


def boundary_scalings(timesteps: torch.Tensor, timestep_scaling: float, sigma_data: float = 0.5):
    """c_skip, c_out of consistency models: c_skip(0) = 1, c_out(0) = 0, so f(x, 0) = x."""
    scaled = timestep_scaling * timesteps.float()
    c_skip = sigma_data**2 / (scaled**2 + sigma_data**2)
    c_out = scaled / (scaled**2 + sigma_data**2) ** 0.5
    return c_skip.view(-1, 1, 1, 1), c_out.view(-1, 1, 1, 1)


def predicted_x0_and_noise(model_output, timesteps, sample, alphas_cumprod, prediction_type: str):
    alpha = alphas_cumprod[timesteps].sqrt().view(-1, 1, 1, 1)
    sigma = (1 - alphas_cumprod[timesteps]).sqrt().view(-1, 1, 1, 1)
    if prediction_type == "epsilon":
        return (sample - sigma * model_output) / alpha, model_output
    if prediction_type == "v_prediction":
        x0 = alpha * sample - sigma * model_output
        return x0, alpha * model_output + sigma * sample
    raise ValueError(f"prediction type {prediction_type!r} is not supported by LCM distillation")


def consistency_loss(prediction: torch.Tensor, target: torch.Tensor, cfg: LcmDistillConfig) -> torch.Tensor:
    if cfg.loss == "l2":
        return F.mse_loss(prediction, target)
    # pseudo-Huber: quadratic near zero, linear far away; less swayed by the rare bad teacher step
    return (torch.sqrt((prediction - target) ** 2 + cfg.huber_c**2) - cfg.huber_c).mean()


# ------------------------------------------------------------------ data


@torch.no_grad()
def training_data(cfg: LcmDistillConfig, pipe, work: Path) -> dict:
    """Shapes-world latents (scaled for the UNet) and one text embedding per distinct caption, cached in work/."""
    path = work / LATENTS_FILE
    if path.exists():
        cached = torch.load(path, weights_only=True)
        if len(cached["latents"]) == cfg.latent_images:
            return cached
    side = pipe.unet.config.sample_size * pipe.vae_scale_factor
    scenes = list(world.scenes(cfg.latent_images, seed=cfg.seed + 11))
    latents = []
    for start in range(0, len(scenes), 200):
        pixels = _to_tensor([world.render(s, side) for s in scenes[start : start + 200]])
        latents.append(pipe.vae.encode(pixels).latent_dist.mode() * pipe.vae.config.scaling_factor)
    captions = sorted({s.caption for s in scenes})
    caption_index = torch.tensor([captions.index(s.caption) for s in scenes])
    embeddings = encode_prompts(pipe, [*captions, ""])
    data = {
        "latents": torch.cat(latents),
        "caption_index": caption_index,
        "embeddings": embeddings[:-1],
        "empty_embedding": embeddings[-1],
    }
    tmp = path.with_suffix(".tmp")
    torch.save(data, tmp)
    tmp.replace(path)
    return data


def encode_prompts(pipe, prompts: list[str]) -> torch.Tensor:
    ids = pipe.tokenizer(
        prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
    return pipe.text_encoder(ids)[0]


# ------------------------------------------------------------------ one step


def distill_step(
    unet, solver: DDIMSolver, alphas_cumprod, prediction_type: str, data: dict, cfg: LcmDistillConfig, step: int
):
    """One consistency-distillation loss on one batch; the caller backpropagates it."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    index = torch.randint(0, len(data["latents"]), (cfg.batch,), generator=gen)
    latents = data["latents"][index]
    text = data["embeddings"][data["caption_index"][index]]
    empty = data["empty_embedding"].expand_as(text)

    # 1. a point t_{n+k} on the DDIM grid and the point t_n one solver step earlier
    grid_index = torch.randint(0, len(solver.timesteps), (cfg.batch,), generator=gen)
    start_t = solver.timesteps[grid_index]
    prev_t = (start_t - solver.step_ratio).clamp(min=0)
    c_skip_start, c_out_start = boundary_scalings(start_t, cfg.timestep_scaling)
    c_skip, c_out = boundary_scalings(prev_t, cfg.timestep_scaling)

    # 2. forward diffusion to t_{n+k}; a guidance strength per image, so one LoRA serves a range of w
    noise = torch.randn(latents.shape, generator=gen)
    alpha = alphas_cumprod[start_t].sqrt().view(-1, 1, 1, 1)
    sigma = (1 - alphas_cumprod[start_t]).sqrt().view(-1, 1, 1, 1)
    noisy = alpha * latents + sigma * noise
    w = (cfg.w_max - cfg.w_min) * torch.rand(cfg.batch, generator=gen) + cfg.w_min
    w = w.view(-1, 1, 1, 1)

    # 3. the student's consistency function at t_{n+k} (the only pass with gradients)
    output = unet(noisy, start_t, text).sample
    pred_x0, _ = predicted_x0_and_noise(output, start_t, noisy, alphas_cumprod, prediction_type)
    student = c_skip_start * noisy + c_out_start * pred_x0

    with torch.no_grad():
        # 4. the teacher (adapters off) takes one guided DDIM step t_{n+k} -> t_n; cond and uncond in one batch
        unet.disable_adapters()
        try:
            both = unet(torch.cat([noisy, noisy]), torch.cat([start_t, start_t]), torch.cat([text, empty])).sample
        finally:
            unet.enable_adapters()
        x0_both, eps_both = predicted_x0_and_noise(
            both, torch.cat([start_t, start_t]), torch.cat([noisy, noisy]), alphas_cumprod, prediction_type
        )
        (cond_x0, uncond_x0), (cond_eps, uncond_eps) = x0_both.chunk(2), eps_both.chunk(2)
        guided_x0 = cond_x0 + w * (cond_x0 - uncond_x0)
        guided_eps = cond_eps + w * (cond_eps - uncond_eps)
        x_prev = solver.step(guided_x0, guided_eps, grid_index)

        # 5. the target: the student's own consistency function at t_n (no target EMA in the LoRA recipe)
        target_output = unet(x_prev, prev_t, text).sample
        target_x0, _ = predicted_x0_and_noise(target_output, prev_t, x_prev, alphas_cumprod, prediction_type)
        target = c_skip * x_prev + c_out * target_x0

    return consistency_loss(student, target, cfg)


# ------------------------------------------------------------------ driver


def _lr_factor(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / warmup) if warmup else 1.0


def _save_state(path: Path, unet_params: dict, optimizer, step: int) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"lora": {k: v.detach() for k, v in unet_params.items()}, "optimizer": optimizer.state_dict(),
                "step": step}, tmp)  # fmt: skip
    tmp.replace(path)  # a process killed mid-save leaves the previous checkpoint whole


def add_lcm_adapter(unet, cfg: LcmDistillConfig) -> dict[str, torch.nn.Parameter]:
    import peft

    unet.requires_grad_(False)
    unet.add_adapter(
        peft.LoraConfig(
            r=cfg.rank, lora_alpha=cfg.alpha, target_modules=cfg.target_modules, init_lora_weights="gaussian"
        )
    )
    params = {name: p for name, p in unet.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError(f"target_modules matched nothing in the UNet: {cfg.target_modules}")
    return params


def distill(cfg: LcmDistillConfig, log=print, stop_after: int | None = None) -> Path | None:
    """Run (or resume) the distillation; returns the LoRA file, or None when `stop_after` steps ended it early."""
    from diffusers import DDPMScheduler

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # the adapter's initial weights
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    pipe = load_pipeline(cfg.model).pipe
    if getattr(pipe, "text_encoder_2", None) is not None:
        raise ValueError("LCM distillation here supports SD 1.x/2.x-style models (one text encoder), not SDXL")
    pipe.vae.requires_grad_(False)
    pipe.text_encoder.requires_grad_(False)
    data = training_data(cfg, pipe, work)
    train_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    alphas_cumprod = train_scheduler.alphas_cumprod.float()
    solver = DDIMSolver(alphas_cumprod, cfg.ddim_timesteps)
    prediction_type = train_scheduler.config.prediction_type  # the model's, kept in its scheduler config

    unet = pipe.unet
    params = add_lcm_adapter(unet, cfg)
    optimizer = torch.optim.AdamW(params.values(), lr=cfg.lr, weight_decay=1e-2)
    start = 0
    state_path = work / STATE_FILE
    if state_path.exists():
        state = torch.load(state_path, weights_only=True)
        for name, value in state["lora"].items():
            params[name].data.copy_(value)
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        log(f"lcm: resuming at step {start}")

    unet.train()
    end = cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)
    started = time.perf_counter()
    with open(work / LOG_FILE, "a") as log_file:
        for step in range(start, end):
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * _lr_factor(step, cfg.warmup)
            loss = distill_step(unet, solver, alphas_cumprod, prediction_type, data, cfg, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
            optimizer.step()
            if (step + 1) % cfg.log_every == 0 or step + 1 == end:
                seconds = time.perf_counter() - started
                record = {"step": step + 1, "loss": round(loss.item(), 6), "s_per_step": seconds / (step + 1 - start)}
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                log(f"lcm step {step + 1}/{cfg.steps}: loss {loss.item():.5f}")
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == end:
                _save_state(state_path, params, optimizer, step + 1)
    if end < cfg.steps:
        return None
    unet.eval()
    return save_lcm_lora(pipe, Path(cfg.out_dir))


def save_lcm_lora(pipe, folder: Path) -> Path:
    """The diffusers LoRA file in float16: half the bytes, and the rounding is far below what the evaluator sees.
    Its scale is in lora_B, as in every diffusers-format LoRA we write (older diffusers ignore the metadata)."""
    layers, metadata = baked_lora_layers(pipe.unet, "unet")
    folder.mkdir(parents=True, exist_ok=True)
    type(pipe).save_lora_weights(
        folder,
        unet_lora_layers={k: v.to(torch.float16) for k, v in layers.items()},
        unet_lora_adapter_metadata=metadata,
        safe_serialization=True,
    )
    return folder / LORA_FILE
