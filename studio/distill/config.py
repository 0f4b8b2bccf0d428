"""LcmDistillConfig: the settings of latent consistency distillation into a LoRA (torch-free, for the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field

LOSSES = ("huber", "l2")
# the layers diffusers' train_lcm_distill_lora_sd_wds.py adapts: attention, feed-forward and the resnet convolutions
LCM_TARGET_MODULES = [
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "proj_in",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
    "conv1",
    "conv2",
    "conv_shortcut",
    "downsamplers.0.conv",
    "upsamplers.0.conv",
    "time_emb_proj",
]


@dataclass
class LcmDistillConfig:
    model: str = field(default="pocket", metadata={"help": "The teacher: 'pocket' or a diffusers SD 1.x folder."})
    out_dir: str = field(
        default="data/distill/pocket-lcm-lora",
        metadata={"help": "Where the LoRA is written (keep 'lcm' in the name: the studio then samples it with LCM)."},
    )
    work_dir: str = field(
        default="data/distill/lcm-work", metadata={"help": "Checkpoints, cached latents and the loss log (resume)."}
    )
    seed: int = field(default=0, metadata={"help": "Seeds the data, noise and timesteps; a resumed run repeats them."})
    threads: int = field(default=1, metadata={"help": "CPU threads for this process."})
    steps: int = field(default=150, metadata={"help": "Optimizer steps."})
    batch: int = field(default=16, metadata={"help": "Latents per step."})
    lr: float = field(
        default=5e-4, metadata={"help": "AdamW learning rate of the LoRA weights (constant after warm-up)."}
    )
    warmup: int = field(default=50, metadata={"help": "Steps of linear learning-rate warm-up."})
    rank: int = field(default=4, metadata={"help": "LoRA rank: bigger learns more and makes a bigger file."})
    alpha: float = field(default=4.0, metadata={"help": "LoRA alpha (scale = alpha / rank)."})
    target_modules: list = field(
        default_factory=lambda: list(LCM_TARGET_MODULES), metadata={"help": "UNet modules that get an adapter."}
    )
    ddim_timesteps: int = field(
        default=50,
        metadata={"help": "Steps of the teacher's DDIM solver; each distillation step skips 1000/N timesteps."},
    )
    w_min: float = field(
        default=3.0, metadata={"help": "Smallest teacher guidance w (cond + w * (cond - uncond), i.e. CFG scale w+1)."}
    )
    w_max: float = field(default=7.0, metadata={"help": "Largest teacher guidance w, sampled uniformly per image."})
    loss: str = field(default="huber", metadata={"help": "huber (pseudo-Huber, as in diffusers' recipe) or l2."})
    huber_c: float = field(default=0.001, metadata={"help": "The pseudo-Huber loss's c."})
    timestep_scaling: float = field(
        default=10.0, metadata={"help": "Boundary-condition time scaling; must match LCMScheduler's (10)."}
    )
    latent_images: int = field(default=4000, metadata={"help": "Shapes-world images encoded once as training data."})
    checkpoint_every: int = field(default=50, metadata={"help": "Steps between resumable checkpoints."})
    log_every: int = field(default=10, metadata={"help": "Steps between lines in the loss log."})

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1:
            raise ValueError("steps and batch must be at least 1")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.rank < 1 or self.alpha <= 0:
            raise ValueError("rank must be at least 1 and alpha positive")
        if not 2 <= self.ddim_timesteps <= 1000:
            raise ValueError(f"ddim_timesteps must be between 2 and 1000, got {self.ddim_timesteps}")
        if not 0 <= self.w_min <= self.w_max:
            raise ValueError(f"need 0 <= w_min <= w_max, got {self.w_min} and {self.w_max}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.huber_c <= 0 or self.timestep_scaling <= 0:
            raise ValueError("huber_c and timestep_scaling must be positive")
        if self.latent_images < self.batch:
            raise ValueError("latent_images must be at least one batch")
        if self.checkpoint_every < 1 or self.log_every < 1 or self.threads < 1 or self.warmup < 0:
            raise ValueError("checkpoint_every, log_every and threads must be at least 1, warmup at least 0")
        if not isinstance(self.target_modules, list) or not all(isinstance(m, str) and m for m in self.target_modules):
            raise ValueError("target_modules must be a non-empty list of module names")
        if not self.target_modules:
            raise ValueError("target_modules must be a non-empty list of module names")
