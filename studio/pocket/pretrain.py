"""The recipe that trains the pocket model from nothing, on 2 CPU cores.

Stages, each resumable from its checkpoint in `work_dir`:
1. tokenizer: byte-level BPE on common English words (seconds);
2. VAE: an image codec for the whole shapes world, new shapes and stray
   clutter included, since fine-tuning freezes it and it must be able to draw
   whatever users teach later;
3. latents: a fixed set of base-vocabulary images encoded once, so the UNet
   stage never runs the VAE;
4. UNet + text encoder: denoising on the cached latents, with EMA weights,
   caption dropout (for classifier-free guidance) and min-SNR weighting;
5. export: a standard `StableDiffusionPipeline` folder plus a model card with
   the measured quality.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from studio.models.saving import save_pipeline_folder
from studio.pocket import components, world
from studio.pocket.concept import judge_probes, phrasing_probes, pipeline_drawer
from studio.pocket.evaluator import judge
from studio.pocket.model_card import write_model_card
from studio.pocket.phrasing import PARAPHRASES, describe
from studio.pocket.pretrain_config import PretrainConfig
from studio.pocket.quality import measure
from studio.pocket.tokenizer import build_tokenizer


def _to_tensor(images) -> torch.Tensor:
    array = np.stack([np.asarray(im, dtype=np.float32) for im in images]) / 127.5 - 1.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def _save_atomic(state: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _load_state(path: Path) -> dict | None:
    return torch.load(path, weights_only=True) if path.exists() else None


# ---------------------------------------------------------------- VAE stage


def _clutter_image(rng: np.random.Generator, side: int):
    """Several shapes in random colours: keeps the VAE general, not a lookup table."""
    from PIL import Image

    background = tuple(int(c) for c in rng.integers(0, 256, 3))
    pixels = np.ones((side, side, 3), np.float32) * np.array(background, np.float32)
    for _ in range(int(rng.integers(1, 4))):
        size = float(rng.uniform(0.15, 0.6))
        cx, cy = rng.uniform(size / 2, 1 - size / 2, 2)
        shape = world.ALL_SHAPES[rng.integers(len(world.ALL_SHAPES))]
        half = size * side / 2
        box = (cx * side - half, cy * side - half, cx * side + half, cy * side + half)
        coverage = world.shape_mask(shape, box, side)[..., None]
        colour = rng.integers(0, 256, 3).astype(np.float32)
        pixels = coverage * colour + (1 - coverage) * pixels
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), "RGB")


def _vae_batch(cfg: PretrainConfig, step: int):
    """The batch for a step depends only on (seed, step): resuming reproduces it."""
    rng = np.random.default_rng([cfg.seed, 1, step])
    images = []
    for _ in range(cfg.vae_batch):
        if rng.random() < cfg.vae_clutter_share:
            images.append(_clutter_image(rng, components.IMAGE_SIZE))
        else:
            scene = world.random_scene(
                rng,
                shapes=world.ALL_SHAPES,
                colors=world.BASE_COLORS + world.NEW_COLORS,
                backgrounds=world.BASE_BACKGROUNDS,
            )
            images.append(world.render(scene, components.IMAGE_SIZE))
    return _to_tensor(images)


@torch.no_grad()
def probe_vae(vae, n: int = 96, seed: int = 123) -> dict:
    """PSNR and evaluator accuracy of reconstructions of held-out images (new shapes too)."""
    from PIL import Image

    scenes = list(world.scenes(n, seed, shapes=world.ALL_SHAPES))
    x = _to_tensor([world.render(s, components.IMAGE_SIZE) for s in scenes])
    rec = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
    mse = F.mse_loss(rec, x).item() / 4  # pixels in [-1, 1]: a quarter of the error in [0, 1]
    arrays = ((rec.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    right = sum(judge(Image.fromarray(a)).matches(s.shape, s.color, s.background) for a, s in zip(arrays, scenes))
    return {"psnr": round(10 * math.log10(1 / max(mse, 1e-10)), 2), "joint": right / n}


def train_vae(cfg: PretrainConfig, work: Path, log) -> torch.nn.Module:
    if cfg.vae_from:
        # a codec already trained (the shipped one): a new UNet and text encoder can reuse it as they are
        from diffusers import AutoencoderKL

        log(f"vae: reusing {cfg.vae_from}")
        vae = AutoencoderKL.from_pretrained(cfg.vae_from).eval()
        if not (work / "vae.done.pt").exists():
            _save_atomic({"model": vae.state_dict(), "probe": probe_vae(vae)}, work / "vae.done.pt")
        return vae
    vae = components.make_vae()
    # Start with a near-deterministic posterior (log-variance ~ -10, std ~ 0.007).
    # From the default init the sampled latents carry noise of std ~1 and the
    # decoder learns through a fog; and a codec whose `latent_dist.sample()`
    # is noisy would also corrupt every fine-tune that samples it.
    with torch.no_grad():
        channels = vae.config.latent_channels
        vae.quant_conv.weight[channels:] *= 0.01
        vae.quant_conv.bias[channels:] = -10.0
    done_path, state_path = work / "vae.done.pt", work / "vae.state.pt"
    finished = _load_state(done_path)
    if finished is not None:
        vae.load_state_dict(finished["model"])
        return vae.eval()

    optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    start = 0
    state = _load_state(state_path)
    if state is not None:
        vae.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        log(f"vae: resuming at step {start}")

    vae.train()
    bar = tqdm(range(start, cfg.vae_steps), initial=start, total=cfg.vae_steps, desc="pocket vae")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = cfg.vae_lr * _lr_factor(step, cfg.vae_steps, warmup=50)
        x = _vae_batch(cfg, step)
        posterior = vae.encode(x).latent_dist
        rec = vae.decode(posterior.sample()).sample
        # L1 keeps flat colours and sharp edges crisp; MSE alone blurs them.
        # The KL term is tiny: we want a faithful codec, and the latent scale
        # is normalised afterwards with the scaling factor anyway.
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + cfg.vae_kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.vae_steps:
            _save_atomic({"model": vae.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1}, state_path)
        if (step + 1) % cfg.probe_every == 0:
            vae.eval()
            log(f"vae step {step + 1}: {probe_vae(vae)}")
            vae.train()
    vae.eval()
    report = probe_vae(vae)
    log(f"vae finished: {report}")
    _save_atomic({"model": vae.state_dict(), "probe": report}, done_path)
    return vae


# ------------------------------------------------------------- latent cache


@torch.no_grad()
def encode_latents(cfg: PretrainConfig, vae, tokenizer, work: Path, log) -> dict:
    path = work / "latents.pt"
    cached = _load_state(path)
    if cached is not None:
        return cached
    scenes = list(world.scenes(cfg.latent_images, seed=cfg.seed + 7))
    latents = []
    for start in tqdm(range(0, len(scenes), 100), desc="pocket latents"):
        x = _to_tensor([world.render(s, components.IMAGE_SIZE) for s in scenes[start : start + 100]])
        latents.append(vae.encode(x).latent_dist.mode())
    latents = torch.cat(latents)
    # As in Stable Diffusion: scale latents to unit variance for the UNet.
    scaling_factor = float(1.0 / latents.std())
    # what each image shows; its caption is written anew at every step (phrasing.py)
    cache = {
        "latents": latents,
        "shape": torch.tensor([world.ALL_SHAPES.index(s.shape) for s in scenes]),
        "color": torch.tensor([list(world.PALETTE).index(s.color) for s in scenes]),
        "background": torch.tensor([list(world.PALETTE).index(s.background) for s in scenes]),
        "size": torch.tensor([s.size for s in scenes]),
        "scaling_factor": torch.tensor(scaling_factor),
    }
    _save_atomic(cache, path)
    log(f"latents: {tuple(latents.shape)}, scaling factor {scaling_factor:.4f}")
    return cache


# -------------------------------------------------------- UNet + text stage


def assemble_pipeline(vae, text_encoder, tokenizer, unet, scaling_factor: float):
    from diffusers import StableDiffusionPipeline

    vae.register_to_config(scaling_factor=scaling_factor)
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=components.make_sampling_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _step_captions(cfg: PretrainConfig, tokenizer, cache: dict, index, dropped, step: int) -> torch.Tensor:
    """Token ids of this step's captions: each image described anew, the way people write (seeded by the step)."""
    rng = np.random.default_rng([cfg.seed, 2, step])
    colours = list(world.PALETTE)
    captions = [
        ""
        if drop
        else describe(
            world.ALL_SHAPES[int(cache["shape"][i])],
            colours[int(cache["color"][i])],
            colours[int(cache["background"][i])],
            float(cache["size"][i]),
            rng,
        )
        for i, drop in zip(index.tolist(), dropped.tolist())
    ]
    return tokenizer(
        captions, padding="max_length", truncation=True, max_length=tokenizer.model_max_length, return_tensors="pt"
    ).input_ids


def grow_from(folder: str, unet, text_encoder, log) -> None:
    """Start from a trained pocket model where names and shapes match: a grown model, as SD 2 grew from SD 1.

    The UNet's new cross-attention at 16x16 starts fresh (it must be able to act, so it is not zeroed); the text
    encoder's new last layer starts as the identity (its two residual branches zeroed), so at step 0 the grown
    text encoder computes exactly what the old one did and training only has to teach it the new phrasings.
    """
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    for model, old in (
        (unet, UNet2DConditionModel.from_pretrained(Path(folder) / "unet")),
        (text_encoder, CLIPTextModel.from_pretrained(Path(folder) / "text_encoder")),
    ):
        mine, theirs = model.state_dict(), old.state_dict()
        kept = {k: v for k, v in theirs.items() if k in mine and mine[k].shape == v.shape}
        model.load_state_dict(kept, strict=False)
        log(f"grown from {folder}: {type(model).__name__} kept {len(kept)} of {len(mine)} tensors")
    # transformers 5 keeps the layers at .encoder, 4 at .text_model.encoder
    encoder = getattr(text_encoder, "text_model", text_encoder).encoder
    new_layer = encoder.layers[-1]
    with torch.no_grad():
        for linear in (new_layer.self_attn.out_proj, new_layer.mlp.fc2):
            linear.weight.zero_()
            linear.bias.zero_()


def train_unet(cfg: PretrainConfig, vae, tokenizer, cache: dict, work: Path, log):
    from diffusers.training_utils import EMAModel, compute_snr

    unet = components.make_unet()
    text_encoder = components.make_text_encoder(
        len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    )
    if cfg.init_from and not (work / "unet.state.pt").exists():
        grow_from(cfg.init_from, unet, text_encoder, log)
    ema_unet = EMAModel(unet.parameters(), decay=cfg.ema_decay, use_ema_warmup=True, power=3 / 4)
    ema_text = EMAModel(text_encoder.parameters(), decay=cfg.ema_decay, use_ema_warmup=True, power=3 / 4)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=1e-2)
    scheduler = components.make_train_scheduler()
    scaling = float(cache["scaling_factor"])

    state_path = work / "unet.state.pt"
    start = 0
    state = _load_state(state_path)
    if state is not None:
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
        ema_unet.load_state_dict(state["ema_unet"])
        ema_text.load_state_dict(state["ema_text"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        log(f"unet: resuming at step {start}")

    latents = cache["latents"]
    unet.train()
    text_encoder.train()
    bar = tqdm(range(start, cfg.unet_steps), initial=start, total=cfg.unet_steps, desc="pocket unet")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = cfg.unet_lr * _lr_factor(step, cfg.unet_steps, warmup=200)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        index = torch.randint(0, len(latents), (cfg.unet_batch,), generator=gen)
        clean = latents[index] * scaling
        # Caption dropout: an empty prompt now and then teaches the
        # unconditional prediction that classifier-free guidance needs.
        dropped = torch.rand(cfg.unet_batch, generator=gen) < cfg.caption_dropout
        ids = _step_captions(cfg, tokenizer, cache, index, dropped, step)

        noise = torch.randn(clean.shape, generator=gen)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (cfg.unet_batch,), generator=gen)
        # Forward diffusion: mix in noise according to each timestep's magnitude.
        noisy = scheduler.add_noise(clean, noise, timesteps)
        hidden = text_encoder(ids)[0]
        prediction = unet(noisy, timesteps, hidden).sample

        # Min-SNR weighting (Hang et al. 2023): stop the easy low-noise steps
        # from dominating the loss; converges several times faster.
        snr = compute_snr(scheduler, timesteps)
        weights = torch.clamp(snr, max=cfg.snr_gamma) / snr
        per_sample = F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_sample * weights).mean()

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ema_unet.step(unet.parameters())
        ema_text.step(text_encoder.parameters())
        bar.set_postfix(loss=f"{loss.item():.4f}")

        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.unet_steps:
            _save_atomic(
                {
                    "unet": unet.state_dict(),
                    "text_encoder": text_encoder.state_dict(),
                    "ema_unet": ema_unet.state_dict(),
                    "ema_text": ema_text.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": step + 1,
                },
                state_path,
            )
        if (step + 1) % cfg.probe_every == 0 and step + 1 < cfg.unet_steps:
            canonical, phrased = _probe_with_ema(cfg, vae, tokenizer, unet, text_encoder, ema_unet, ema_text, scaling)
            log(
                f"unet step {step + 1}: loss {loss.item():.4f}, EMA probe {canonical.as_dict()}, "
                f"paraphrased {phrased.as_dict()}"
            )

    # The EMA weights are what we ship: smoother, and markedly better here.
    ema_unet.copy_to(unet.parameters())
    ema_text.copy_to(text_encoder.parameters())
    return unet.eval(), text_encoder.eval()


def _probe_with_ema(cfg, vae, tokenizer, unet, text_encoder, ema_unet, ema_text, scaling):
    ema_unet.store(unet.parameters())
    ema_text.store(text_encoder.parameters())
    ema_unet.copy_to(unet.parameters())
    ema_text.copy_to(text_encoder.parameters())
    unet.eval()
    text_encoder.eval()
    try:
        pipe = assemble_pipeline(vae, text_encoder, tokenizer, unet, scaling)
        pipe.set_progress_bar_config(disable=True)

        combos = world.base_combinations()[::2]  # half the combinations: a quick look
        canonical = measure(pipe, combos, seeds=(0,), steps=20, guidance=cfg.guidance)
        # the other half, each in one of the judged paraphrases (made-up words included), in turn
        styles = list(PARAPHRASES.values())
        phrased = measure(
            pipe,
            world.base_combinations()[1::2],
            seeds=(0,),
            steps=20,
            guidance=cfg.guidance,
            phrase=lambda i, combo: styles[i % len(styles)](*combo),
        )
        return canonical, phrased
    finally:
        ema_unet.restore(unet.parameters())
        ema_text.restore(text_encoder.parameters())
        unet.train()
        text_encoder.train()


# ------------------------------------------------------------------ driver


def pretrain(cfg: PretrainConfig, log=print) -> dict:
    """Run (or resume) every stage and write the pipeline to `cfg.out_dir`."""
    torch.set_num_threads(cfg.threads)
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    started = time.time()

    tokenizer = build_tokenizer(work / "tokenizer", cfg.vocab_size)
    vae = train_vae(cfg, work, log)
    cache = encode_latents(cfg, vae, tokenizer, work, log)
    unet, text_encoder = train_unet(cfg, vae, tokenizer, cache, work, log)

    pipe = assemble_pipeline(vae, text_encoder, tokenizer, unet, float(cache["scaling_factor"]))
    pipe.set_progress_bar_config(disable=True)
    report = measure(pipe, seeds=tuple(range(cfg.eval_seeds)), steps=cfg.eval_steps, guidance=cfg.guidance)
    log(f"final quality: {report.as_dict()}")

    phrasing = judge_probes(pipeline_drawer(pipe, steps=cfg.eval_steps, guidance=cfg.guidance), phrasing_probes())
    log(f"phrasing: {phrasing.as_dict()}")

    out = Path(cfg.out_dir)
    save_pipeline_folder(pipe, out)  # with vocab.json + merges.txt and the key names transformers 4 reads
    vae_probe = _load_state(work / "vae.done.pt")["probe"]
    metrics = {
        **report.as_dict(),
        "sampler": "DPM-Solver++ 2M",
        "steps": cfg.eval_steps,
        "guidance": cfg.guidance,
        "vae_reconstruction": vae_probe,
        "phrasing": phrasing.as_dict(),
        "last_invocation_minutes": round((time.time() - started) / 60, 1),
        "misses": report.misses[:20],
    }
    write_model_card(out, cfg, metrics)
    return metrics
