"""Configs: the shared training section, strict loading (unknown keys refused), presets with versions, `--set`.

A run config on disk (config.yaml) has three parts:

    version: 1
    method: lora
    training: {learning_rate: ..., steps: ..., ...}   # TrainingConfig: what every method shares
    lora: {rank: ..., alpha: ...}                     # the method's own dataclass

Loading goes defaults -> preset -> user overrides. A preset is sparse (only the keys that differ) and carries
a `version`; MIGRATIONS upgrades an old preset one version at a time before it is applied.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from studio.data.caption_text import MAX_PROMPT_BYTES, check_prompt_size
from studio.paths import PROJECT_ROOT
from studio.train.methods import config_class

CONFIG_VERSION = 1
PRESETS_DIR = PROJECT_ROOT / "presets"
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
MIXED_PRECISION = ("no", "fp16", "bf16")
OPTIMIZERS = ("adamw", "adamw8bit")
ATTENTION = ("sdpa", "xformers")
EXPORT_CHECKS = ("quick", "full", "skip")  # studio/train/export_check.py (not "off": YAML reads that as false)

# Upper bounds on every number that sizes a run, whatever the machine: beyond them a run only ever ends killed by
# the kernel or never ends (rank 100000 was killed at 18 GB; resolution 1000000 was a MemoryError; 1e12 steps).
# A public studio caps visitors far lower (studio.workspace.PublicLimits).
MAX_STEPS = 1_000_000
MAX_RESOLUTION = 4096  # SDXL trains at 1024; 4096 is 16 times its pixels
MAX_BATCH_SIZE = 64
MAX_GRADIENT_ACCUMULATION = 1024
MAX_KEEP_CHECKPOINTS = 100
MAX_SAMPLE_STEPS = 200  # the generation engine's own limit
MAX_SAMPLE_PROMPTS = 16
MAX_BASE_LORAS = 16
MAX_SEED = 2**32 - 1
MAX_LORA_RANK = 1024  # SD's widest attention layers are 1280 wide: a rank near that is no longer low-rank


@dataclass
class TrainingConfig:
    """What every method shares. Each field's help is what the UI shows beside it."""

    base_model: str = field(
        default="pocket",
        metadata={"help": "Base model: 'pocket', a diffusers folder, a .safetensors file or a hub id."},
    )
    base_loras: list[str] = field(
        default_factory=list,
        metadata={
            "help": "LoRAs merged into the base model before training, each PATH or PATH:WEIGHT (a file, a run "
            "folder or a checkpoint). What you train then learns on top of them, so it stacks with them later: "
            "train a style LoRA on top of a subject LoRA to use the two together (kohya's base_weights)."
        },
    )
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate (after warmup)."})
    steps: int = field(default=1000, metadata={"help": "Optimizer steps to train for."})
    batch_size: int = field(default=1, metadata={"help": "Images per micro-batch."})
    gradient_accumulation: int = field(
        default=1, metadata={"help": "Micro-batches summed per optimizer step (effective batch = batch x this)."}
    )
    resolution: int = field(default=512, metadata={"help": "Training resolution in pixels (square side)."})
    seed: int = field(default=0, metadata={"help": "Seed for weights, noise and data order: same seed, same run."})
    lr_scheduler: str = field(
        default="constant", metadata={"help": "Learning-rate schedule (diffusers get_scheduler)."}
    )
    warmup_steps: int = field(default=0, metadata={"help": "Steps over which the learning rate ramps up from 0."})
    optimizer: str = field(default="adamw", metadata={"help": "adamw, or adamw8bit (needs bitsandbytes and a GPU)."})
    adam_weight_decay: float = field(default=1e-2, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Clip gradients to this norm (0: no clipping)."})
    mixed_precision: str = field(default="no", metadata={"help": "no, fp16 or bf16 (GPU only)."})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda."})
    min_snr_gamma: float = field(
        default=0.0, metadata={"help": "Min-SNR loss weighting gamma (5 is usual; 0 turns it off)."}
    )
    offset_noise: float = field(
        default=0.0, metadata={"help": "Offset noise strength (about 0.05-0.1 helps very dark/bright images)."}
    )
    caption_dropout: float = field(
        default=0.0, metadata={"help": "Probability of training a sample with an empty caption (helps CFG)."}
    )
    random_flip: bool = field(
        default=False,
        metadata={
            "help": "Mirror each training image left-right half of the time: twice the variety from a few images, "
            "so the model learns the subject rather than five exact pictures. Off for subjects with a handedness "
            "(text, logos, a parting on one side)."
        },
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in the backward pass: much less VRAM, ~20% slower."}
    )
    attention: str = field(
        default="sdpa",
        metadata={"help": "sdpa (PyTorch's fused attention, the default) or xformers (needs the xformers package)."},
    )
    cache_latents: bool = field(default=True, metadata={"help": "Encode images once when the VAE is frozen."})
    checkpoint_every: int = field(default=250, metadata={"help": "Save resumable state every N steps (0: never)."})
    keep_checkpoints: int = field(default=2, metadata={"help": "How many recent checkpoints to keep."})
    sample_every: int = field(default=0, metadata={"help": "Render the sample prompts every N steps (0: never)."})
    sample_prompts: list[str] = field(
        default_factory=list, metadata={"help": "Validation prompts, rendered with a fixed seed."}
    )
    sample_steps: int = field(default=20, metadata={"help": "Denoising steps for validation samples."})
    sample_seed: int = field(default=1234, metadata={"help": "Seed for validation samples (fixed across the run)."})
    log_every: int = field(default=1, metadata={"help": "Write a step event every N steps."})
    export_check: str = field(
        default="quick",
        metadata={
            "help": "How each export is checked to reload as trained. quick: its tensors read back and compared, "
            "LoRA files reloaded beside the trained adapter for one unguided step (seconds, no second model in "
            "memory); full: a fresh base model per file and four guided steps compared in pixels (minutes at "
            "SD size); skip: no check."
        },
    )

    def __post_init__(self) -> None:
        check_numbers(self)
        _positive(self, "learning_rate", "steps", "batch_size", "gradient_accumulation", "resolution")
        _non_negative(
            self, "warmup_steps", "max_grad_norm", "min_snr_gamma", "offset_noise", "checkpoint_every", "sample_every"
        )
        _positive(self, "keep_checkpoints", "sample_steps", "log_every")
        _choice(self, "lr_scheduler", LR_SCHEDULERS)
        _choice(self, "mixed_precision", MIXED_PRECISION)
        _choice(self, "optimizer", OPTIMIZERS)
        _choice(self, "attention", ATTENTION)
        _choice(self, "device", ("auto", "cpu", "cuda"))
        _choice(self, "export_check", EXPORT_CHECKS)
        if not 0 <= self.caption_dropout < 1:
            raise ValueError(f"caption_dropout must be in [0, 1), got {self.caption_dropout}")
        if self.resolution % 8:
            raise ValueError(f"resolution must be a multiple of 8, got {self.resolution}")
        if self.warmup_steps > self.steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must not exceed steps ({self.steps})")
        if not self.base_model:
            raise ValueError("base_model must not be empty")
        if not isinstance(self.sample_prompts, list) or not all(isinstance(p, str) for p in self.sample_prompts):
            raise ValueError("sample_prompts must be a list of strings")
        if not isinstance(self.base_loras, list) or not all(isinstance(p, str) and p.strip() for p in self.base_loras):
            raise ValueError("base_loras must be a list of LoRA paths (PATH or PATH:WEIGHT)")
        if self.sample_every and not self.sample_prompts:
            raise ValueError("sample_every is set but sample_prompts is empty")
        self._check_bounds()

    def _check_bounds(self) -> None:
        at_most(self, "steps", MAX_STEPS)
        at_most(self, "resolution", MAX_RESOLUTION)
        at_most(self, "batch_size", MAX_BATCH_SIZE)
        at_most(self, "gradient_accumulation", MAX_GRADIENT_ACCUMULATION)
        at_most(self, "keep_checkpoints", MAX_KEEP_CHECKPOINTS)
        at_most(self, "sample_steps", MAX_SAMPLE_STEPS)
        at_most(self, "seed", MAX_SEED)
        at_most(self, "sample_seed", MAX_SEED)
        _non_negative(self, "seed", "sample_seed")
        if len(self.sample_prompts) > MAX_SAMPLE_PROMPTS:
            raise ValueError(
                f"sample_prompts holds at most {MAX_SAMPLE_PROMPTS} prompts, got {len(self.sample_prompts)}"
            )
        if len(self.base_loras) > MAX_BASE_LORAS:
            raise ValueError(f"base_loras holds at most {MAX_BASE_LORAS} LoRAs, got {len(self.base_loras)}")

        for prompt in self.sample_prompts:
            check_prompt_size("a sample prompt", prompt, MAX_PROMPT_BYTES)


# ------------------------------------------------------------------ validation helpers (shared by method configs)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not _is_number(value) or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")


def _non_negative(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not _is_number(value) or value < 0:
            raise ValueError(f"{name} must be 0 or more, got {value!r}")


def at_most(config: Any, name: str, limit: int | float) -> None:
    value = getattr(config, name)
    if value > limit:
        raise ValueError(f"{name} must be at most {limit}, got {value!r}")


def check_numbers(config: Any) -> None:
    """Every int field a whole number (not True, not 1e12 as a float) and every float field a finite number
    (inf and nan are refused: a run with learning_rate inf trains nothing but NaN)."""
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        if spec.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{spec.name} must be a whole number, got {value!r}")
        if spec.type == "float" and not _is_number(value):
            raise ValueError(f"{spec.name} must be a finite number, got {value!r}")


def _choice(config: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


positive, non_negative, choice = _positive, _non_negative, _choice


def from_dict(cls: type, data: dict, section: str) -> Any:
    """A dataclass from a dict, refusing keys it does not know (a typo must not silently pass)."""
    if not isinstance(data, dict):
        raise ValueError(f"{section} must be a mapping, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown key(s) in {section}: {', '.join(unknown)}")
    return cls(**_coerce(cls, data))


def _coerce(cls: type, data: dict) -> dict:
    """YAML reads 1e-4 as a string and `--set steps=10` gives strings: convert to the field's type."""
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    out = {}
    for key, value in data.items():
        kind = str(types[key])
        try:
            if kind == "float" and isinstance(value, (str, int)) and not isinstance(value, bool):
                value = float(value)
            elif kind == "int" and isinstance(value, str):
                value = int(value)
            elif kind == "bool" and isinstance(value, str):
                lowered = value.lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = lowered in ("true", "1", "yes")
            elif kind == "str" and isinstance(value, bool):
                # YAML 1.1 reads an unquoted no/yes/off/on as a boolean: `mixed_precision: no` means the word
                value = "yes" if value else "no"
        except ValueError:
            raise ValueError(f"{key} must be {kind}, got {value!r}") from None
        out[key] = value
    return out


# ------------------------------------------------------------------ the full run config


@dataclass
class RunConfig:
    method: str
    training: TrainingConfig
    method_config: Any  # the method's dataclass (e.g. LoraConfig), stored under the method's name

    def to_dict(self) -> dict:
        return {
            "version": CONFIG_VERSION,
            "method": self.method,
            "training": dataclasses.asdict(self.training),
            self.method: dataclasses.asdict(self.method_config),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def method_config_class(method: str) -> type:
    return config_class(method)


def config_from_dict(data: dict) -> RunConfig:
    """A full (not sparse) config dict -> RunConfig; unknown sections and keys refused."""
    data = migrate(dict(data))
    method = data.get("method", "lora")
    data.pop("description", None)  # presets explain themselves; not part of a run's config
    sections = {"version", "method", "training", method}
    unknown = sorted(set(data) - sections)
    if unknown:
        raise ValueError(f"unknown key(s) in config: {', '.join(unknown)}")
    training = from_dict(TrainingConfig, data.get("training") or {}, "training")
    method_config = from_dict(method_config_class(method), data.get(method) or {}, method)
    return RunConfig(method, training, method_config)


def load_config_file(path: Path) -> RunConfig:
    return config_from_dict(_read_yaml(path))


def _read_yaml(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no config file {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping")
    return data


# ------------------------------------------------------------------ presets, migrations, overrides


def _migrate_0_to_1(data: dict) -> dict:
    """Version 0 (unversioned drafts) wrote the shared section as `train:`."""
    if "train" in data:
        data["training"] = data.pop("train")
    return data


# MIGRATIONS[n] upgrades a version-n config to n + 1
MIGRATIONS: dict[int, Callable[[dict], dict]] = {0: _migrate_0_to_1}


def migrate(data: dict) -> dict:
    version = data.get("version", 0)
    if not isinstance(version, int) or version > CONFIG_VERSION:
        raise ValueError(f"config version {version!r} is newer than this studio understands ({CONFIG_VERSION})")
    while version < CONFIG_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    data["version"] = CONFIG_VERSION
    return data


def preset_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"no preset {name!r}; known: {known}")
    return path


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`--set key=value` pairs; key is `section.field` or a field name that only one section has."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value
    return out


def _override_value(value: str) -> Any:
    # YAML scalars: numbers, booleans and [lists] the way a user types them
    return yaml.safe_load(value) if value.strip() else ""


def resolve_config(
    preset: str | None = None, config_file: Path | None = None, overrides: dict[str, str] | None = None
) -> RunConfig:
    """defaults -> preset (or a full config file) -> user overrides, validated."""
    if preset and config_file:
        raise ValueError("give a preset or a config file, not both")
    data: dict = {"method": "lora", "training": {}}
    if preset or config_file:
        layer = migrate(_read_yaml(preset_path(preset) if preset else Path(config_file)))
        data["method"] = layer.get("method", "lora")
        for key, value in layer.items():
            if key in ("version", "method", "description"):
                continue
            if not isinstance(value, dict):
                raise ValueError(f"unknown key(s) in config: {key}")
            data.setdefault(key, {}).update(value)
    return _with_overrides(data, overrides or {})


def override_config(config: RunConfig, overrides: dict[str, str]) -> RunConfig:
    """A resolved config with `--set` style overrides on top (a sweep's values over the form's settings)."""
    return _with_overrides(config.to_dict(), overrides)


def _with_overrides(data: dict, overrides: dict[str, str]) -> RunConfig:
    method = data["method"]
    data.setdefault(method, {})
    method_fields = {f.name for f in dataclasses.fields(method_config_class(method))}
    training_fields = {f.name for f in dataclasses.fields(TrainingConfig)}
    for key, raw in overrides.items():
        section, _, name = key.rpartition(".")
        if not section:
            sections = [s for s, names in (("training", training_fields), (method, method_fields)) if key in names]
            if not sections:
                raise ValueError(f"unknown setting {key!r}")
            section = sections[0]
        if section not in ("training", method):
            raise ValueError(f"unknown section {section!r} in --set {key}")
        data.setdefault(section, {})[name] = _override_value(raw)
    data["version"] = CONFIG_VERSION
    return config_from_dict(data)
