"""Training overhead on the pocket model (CPU): our engine's step vs a bare diffusers/peft loop, and the cost of
validation previews + event logging.

(1) Step time, LoRA (the lora-pocket preset: UNet + text encoder adapters, batch 4) and DreamBooth with prior
    preservation (dreambooth-pocket: full UNet, 2 instance + 2 class images): `loop.optimizer_step` of a prepared
    trainer vs the same step written directly on diffusers + peft + torch (same weights, data, batch, optimizer).
    Goal: ours / bare <= 1.05.
(2) `loop.train` at the preset's default cadence (step event every step, a preview every 100 steps) vs the same
    run with no previews and one event at the end. Goal: previews + logging <= 10 % of the wall time.
Variants alternate (A, B, A, B, ...) because the CPU is shared; medians are reported.
One command: `.venv/bin/python bench/train_overhead.py` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from studio.runtime import prepare_environment

prepare_environment()


def concept(folder: Path) -> Path:
    from studio.pocket.datasets import write_concept_folder

    return write_concept_folder(folder, "star", "sks", side=64)


def make_trainer(preset: str, data: Path, root: Path, **overrides):
    from studio.train.config import resolve_config
    from studio.train.loop import prepare_trainer
    from studio.train.start import create_run

    settings = {"sample_every": "0", "checkpoint_every": "0", "sample_prompts": "[a sks on a black background]"}
    config = resolve_config(preset, overrides=settings | {k: str(v) for k, v in overrides.items()})
    return prepare_trainer(create_run(config, data, root=root))


class BareLoop:
    """The step of diffusers' train_text_to_image_lora.py / train_dreambooth.py, written out on the same data."""

    def __init__(self, trainer, dreambooth: bool) -> None:
        import torch
        from diffusers import DDPMScheduler, StableDiffusionPipeline
        from peft import LoraConfig

        from studio.paths import POCKET_MODEL_DIR

        pipe = StableDiffusionPipeline.from_pretrained(POCKET_MODEL_DIR, torch_dtype=torch.float32)
        self.unet, self.vae, self.text_encoder, self.tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
        self.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        training = trainer.training
        self.batch_size, self.dreambooth = training.batch_size, dreambooth
        for part in (self.unet, self.vae, self.text_encoder):
            part.requires_grad_(False)
        method = trainer.config.method_config
        self.train_text = False
        if dreambooth:
            self.unet.requires_grad_(True)
            params = list(self.unet.parameters())
            self.prompts = (method.instance_prompt, method.class_prompt)
            self.class_images = [i.path for i in trainer.method.class_items]
        else:
            lora = dict(r=method.rank, lora_alpha=method.alpha, init_lora_weights="gaussian")
            self.unet.add_adapter(LoraConfig(target_modules=method.target_modules, **lora))
            self.train_text = method.train_text_encoder
            if self.train_text:
                self.text_encoder.add_adapter(LoraConfig(target_modules=method.text_encoder_target_modules, **lora))
            params = [p for m in (self.unet, self.text_encoder) for p in m.parameters() if p.requires_grad]
        self.unet.train()
        self.params = params
        self.optimizer = torch.optim.AdamW(params, lr=training.learning_rate, weight_decay=training.adam_weight_decay)
        self.max_grad_norm = training.max_grad_norm
        self.items = trainer.items
        with torch.no_grad():  # latents cached once, as our engine does with cache_latents (the default)
            self.latents = [self._encode(i.path) for i in self.items]
            self.class_latents = [self._encode(p) for p in self.class_images] if dreambooth else []
            self.frozen_text = {}
        self.generator = torch.Generator().manual_seed(0)
        self.position = 0

    def _encode(self, path):
        import numpy as np
        import torch
        from PIL import Image

        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 127.5 - 1
        dist = self.vae.encode(torch.from_numpy(pixels).permute(2, 0, 1)[None]).latent_dist
        return dist.mean[0], dist.std[0]

    def _text(self, captions):
        import torch

        ids = self.tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        if self.train_text:
            return self.text_encoder(ids.input_ids)[0]
        with torch.no_grad():
            key = tuple(captions)
            if key not in self.frozen_text:
                self.frozen_text[key] = self.text_encoder(ids.input_ids)[0]
            return self.frozen_text[key]

    def step(self) -> None:
        import torch
        import torch.nn.functional as F

        n = len(self.latents)
        picks = [(self.position + i) % n for i in range(self.batch_size)]
        self.position += self.batch_size
        pairs = [self.latents[i] for i in picks]
        captions = [self.items[i].caption for i in picks]
        if self.dreambooth:
            captions = [self.prompts[0]] * len(pairs)
            pairs += [self.class_latents[(self.position + i) % len(self.class_latents)] for i in range(len(pairs))]
            captions += [self.prompts[1]] * (len(pairs) - len(captions))
        mean, std = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        latents = (mean + std * torch.randn(mean.shape, generator=self.generator)) * self.vae.config.scaling_factor
        noise = torch.randn(latents.shape, generator=self.generator)
        steps = torch.randint(0, self.scheduler.config.num_train_timesteps, (len(pairs),), generator=self.generator)
        noisy = self.scheduler.add_noise(latents, noise, steps)
        prediction = self.unet(noisy, steps, self._text(captions)).sample
        if self.dreambooth:
            half = len(pairs) // 2
            loss = F.mse_loss(prediction[:half], noise[:half]) + F.mse_loss(prediction[half:], noise[half:])
        else:
            loss = F.mse_loss(prediction, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def step_times(step, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return times


def compare_steps(name: str, trainer, bare: BareLoop, rounds: int, block: int) -> float:
    from studio.train.loop import optimizer_step, set_train_mode

    set_train_mode(trainer, True)
    step_times(lambda: optimizer_step(trainer), 3)  # warm-up both
    step_times(bare.step, 3)
    ours, theirs = [], []
    for _ in range(rounds):  # A, B, A, B, ...
        ours += step_times(lambda: optimizer_step(trainer), block)
        theirs += step_times(bare.step, block)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"(1) {name}: ours {a * 1000:.1f} ms/step, bare {b * 1000:.1f} ms/step (medians of {len(ours)} steps)")
    print(f"    ratio ours/bare: {a / b:.3f}  (goal <= 1.05)")
    return a / b


def train_seconds(data: Path, root: Path, steps: int, quiet: bool) -> float:
    from studio.train.loop import train

    cadence = {"log_every": steps, "sample_every": 0} if quiet else {"sample_every": 100}
    trainer = make_trainer("lora-pocket", data, root, steps=steps, **cadence)
    if not quiet:
        trainer.config.training.sample_prompts = ["a sks on a black background"]
    started = time.perf_counter()
    train(trainer)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4, help="A/B rounds of the step comparison")
    parser.add_argument("--block", type=int, default=5, help="steps per variant per round")
    parser.add_argument("--cadence-steps", type=int, default=200, help="steps of each run in (2)")
    parser.add_argument("--cadence-pairs", type=int, default=2, help="A/B pairs of runs in (2)")
    parser.add_argument("--only", choices=("steps", "cadence"))
    args = parser.parse_args()

    import torch

    from studio.runtime import apply_thread_budget

    apply_thread_budget(args.threads)
    print(f"threads={args.threads} torch={torch.__version__} cores={__import__('os').cpu_count()}")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        __import__("os").environ["STUDIO_DATA_DIR"] = str(scratch / "data")  # class images, kept out of data/
        data = concept(scratch / "concept")
        if args.only != "cadence":
            for preset, name, dreambooth in (
                ("lora-pocket", "LoRA (lora-pocket)", False),
                ("dreambooth-pocket", "DreamBooth + prior preservation", True),
            ):
                overrides = {"num_class_images": 8} if dreambooth else {}
                trainer = make_trainer(preset, data, scratch / "runs", **overrides)
                compare_steps(name, trainer, BareLoop(trainer, dreambooth), args.rounds, args.block)
                del trainer
        if args.only != "steps":
            full, quiet = [], []
            for _ in range(args.cadence_pairs):
                full.append(train_seconds(data, scratch / "runs", args.cadence_steps, quiet=False))
                quiet.append(train_seconds(data, scratch / "runs", args.cadence_steps, quiet=True))
            a, b = statistics.median(full), statistics.median(quiet)
            print(
                f"(2) {args.cadence_steps} LoRA steps: default cadence {a:.1f} s, no previews + 1 event {b:.1f} s "
                f"(medians of {len(full)})"
            )
            print(f"    previews + logging: {(a - b) / a:.1%} of the wall time  (goal <= 10 %)")


if __name__ == "__main__":
    main()
