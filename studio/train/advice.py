"""Before a run starts: warnings about risky settings, and an estimate of its time and memory.

The warnings are the field's known anti-patterns (a learning rate far outside the method's usual range, too few
images, DreamBooth without prior preservation, a generic trigger word, so many repeats that the model memorises
the images). They advise; they never block a start.

The time estimate is measured, not guessed, wherever it can be: finished runs on the same base model and
resolution give seconds per image-step, which scales with batch size and steps. Without such a run the pocket
model uses figures measured on a 2-core CPU (BENCHMARKS.md), and other models say that there is no measurement yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.train.config import RunConfig

# usual learning rates per method (low, high); a rate more than LR_FACTOR outside is "far outside"
LR_RANGES = {
    "lora": (1e-5, 3e-3),
    "dreambooth": (1e-7, 5e-4),  # the full UNet: small rates (pocket's tiny UNet sits at the top)
    "dreambooth_lora": (1e-5, 3e-3),
    "textual_inversion": (1e-4, 1e-2),
    "finetune": (1e-7, 1e-3),  # the full UNet again; SD's style fine-tunes use 1e-6 to 1e-5
    "svdiff": (1e-4, 1e-2),  # singular-value shifts: about 1000x a fine-tune's rate (the paper: 1e-3 on SD 1.5)
}
LR_FACTOR = 3.0
MIN_IMAGES = 3
MAX_REPEATS = 400  # times each image is seen; beyond this a small dataset is usually memorised
GENERIC_TRIGGERS = {
    "person", "man", "woman", "girl", "boy", "people", "dog", "cat", "car", "style", "art", "photo", "picture",
    "face", "portrait", "shape", "object", "thing", "me", "subject", "character", "animal",
}  # fmt: skip
POCKET_RESOLUTION = 64

# Pocket model, 64 px, CPU with one training thread beside the UI (measured with the lora-pocket preset)
POCKET_SECONDS_PER_IMAGE_STEP = {
    "lora": 0.05, "dreambooth": 0.06, "dreambooth_lora": 0.05, "textual_inversion": 0.04, "finetune": 0.06,
    "svdiff": 0.06,
}  # fmt: skip
POCKET_LOAD_SECONDS = 12.0  # start the process, load the model, cache latents
EXPORT_SECONDS = 4.0  # write the exports and reload each to check it
SECONDS_PER_SAMPLE_STEP = 0.12  # one denoising step of one 64 px validation sample
POCKET_MEMORY_GB = 1.0
# Rules of thumb for SD 1.x at 512 px, batch 1, fp16 on a GPU (diffusers' training docs and common reports)
SD_MEMORY_GB = {
    "lora": 7.0, "dreambooth": 16.0, "dreambooth_lora": 8.0, "textual_inversion": 7.0, "finetune": 20.0,
    "svdiff": 11.0,  # frozen U and V^T beside each shifted weight (3.8 GiB fp32 on SD 1.5): an estimate
}  # fmt: skip


def method_kind(config: RunConfig) -> str:
    if config.method == "dreambooth" and config.method_config.use_lora:
        return "dreambooth_lora"
    return config.method


def trigger_word(config: RunConfig, dataset_trigger: str | None) -> str | None:
    if config.method == "dreambooth":
        from studio.train.start import TRIGGER_PLACEHOLDER

        word = config.method_config.trigger  # a preset's <trigger> is the dataset's word, filled in at the start
        return dataset_trigger if word == TRIGGER_PLACEHOLDER else word
    if config.method == "textual_inversion":
        return config.method_config.placeholder_token
    return dataset_trigger


def risky_settings(config: RunConfig, image_count: int, dataset_trigger: str | None = None) -> list[str]:
    """One sentence per risky setting, most serious first."""
    training, kind = config.training, method_kind(config)
    found = []
    low, high = LR_RANGES[kind]
    if training.learning_rate > high * LR_FACTOR:
        found.append(
            f"Learning rate {training.learning_rate:g} is far above the usual {low:g}–{high:g} for this method: "
            "training may diverge or wash out the base model."
        )
    elif training.learning_rate < low / LR_FACTOR:
        found.append(
            f"Learning rate {training.learning_rate:g} is far below the usual {low:g}–{high:g} for this method: "
            "the model will barely change."
        )
    if image_count < MIN_IMAGES:
        found.append(f"Only {image_count} image(s): use at least {MIN_IMAGES}, ideally 5–20 varied ones.")
    if config.method == "dreambooth" and not config.method_config.with_prior_preservation:
        found.append(
            "DreamBooth without prior preservation: the class word drifts towards your subject "
            "(every 'dog' becomes your dog). Turn on with_prior_preservation."
        )
    trigger = trigger_word(config, dataset_trigger)
    if trigger and trigger.strip("<>").lower() in GENERIC_TRIGGERS:
        found.append(
            f"The trigger word '{trigger}' is a common word: the model already means something by it. "
            "Use a rare token such as 'sks' or 'zq'."
        )
    elif config.method == "dreambooth" and not trigger:
        found.append(
            "The dataset has no trigger word, and this preset takes DreamBooth's trigger from it: set one on the "
            "dataset, or type the trigger and instance prompt."
        )
    elif config.method == "lora" and not trigger:
        found.append("The dataset has no trigger word: the LoRA changes everything it generates, not one concept.")
    if image_count:
        repeats = training.steps * training.batch_size * training.gradient_accumulation / image_count
        if repeats > MAX_REPEATS:
            found.append(
                f"Each image is seen about {repeats:.0f} times ({training.steps} steps): likely to overfit "
                f"(copies of the training images). Fewer steps or more images help."
            )
    if training.base_model == "pocket" and training.resolution != POCKET_RESOLUTION:
        found.append(
            f"The pocket model works at {POCKET_RESOLUTION} px; {training.resolution} px is slower and off its training."
        )
    if training.sample_every == 0 or not training.sample_prompts:
        found.append("No validation samples: you will not see what the model learns until the end.")
    return found


@dataclass
class Estimate:
    seconds: float | None
    memory_gb: float | None
    basis: str  # where the figures come from, shown beside them

    def describe(self) -> str:
        from studio.train.monitor import format_duration

        time_text = f"about {format_duration(self.seconds)}" if self.seconds is not None else "unknown time"
        memory = f"about {self.memory_gb:g} GB of memory" if self.memory_gb is not None else "unknown memory"
        return f"{time_text}, {memory} ({self.basis})"


def seconds_per_image_step(runs_root: Path, base_model: str, resolution: int, kind: str) -> float | None:
    """Median seconds per image and step over finished runs with the same model, resolution and method."""
    import statistics

    import yaml

    from studio.train import runs

    measured = []
    for state in runs.list_runs(runs_root):
        if state.status != "finished":
            continue
        try:
            data = yaml.safe_load((state.folder / runs.CONFIG).read_text(encoding="utf-8"))
            training = data["training"]
        except (OSError, KeyError, TypeError, yaml.YAMLError):
            continue
        section = data.get(data.get("method"), {}) or {}
        run_kind = (
            "dreambooth_lora" if data.get("method") == "dreambooth" and section.get("use_lora") else data.get("method")
        )
        if (training.get("base_model"), training.get("resolution"), run_kind) != (base_model, resolution, kind):
            continue
        images = training.get("batch_size", 1) * training.get("gradient_accumulation", 1)
        step_times = [
            e["seconds"] for e in runs.read_events(state.folder) if e.get("type") == "step" and "seconds" in e
        ]
        if step_times:
            measured.append(statistics.median(step_times) / images)
    return statistics.median(measured) if measured else None


def estimate(config: RunConfig, runs_root: Path | None = None) -> Estimate:
    training, kind = config.training, method_kind(config)
    image_steps = training.steps * training.batch_size * training.gradient_accumulation
    pocket = training.base_model == "pocket"
    memory = POCKET_MEMORY_GB if pocket else SD_MEMORY_GB[kind] * (training.resolution / 512) ** 2
    sample_renders = (training.steps // training.sample_every if training.sample_every else 0) * len(
        training.sample_prompts
    )
    measured = seconds_per_image_step(runs_root, training.base_model, training.resolution, kind) if runs_root else None
    if measured is not None:
        seconds = POCKET_LOAD_SECONDS + EXPORT_SECONDS + image_steps * measured
        seconds += sample_renders * training.sample_steps * SECONDS_PER_SAMPLE_STEP
        return Estimate(seconds, memory, "measured on earlier runs of this model here")
    if pocket:
        scale = (training.resolution / POCKET_RESOLUTION) ** 2
        seconds = POCKET_LOAD_SECONDS + EXPORT_SECONDS + image_steps * POCKET_SECONDS_PER_IMAGE_STEP[kind] * scale
        seconds += sample_renders * training.sample_steps * SECONDS_PER_SAMPLE_STEP * scale
        return Estimate(seconds, memory, "pocket model on a 2-core CPU")
    return Estimate(None, round(memory, 1), "no run of this model measured here yet; memory is a rule of thumb")


def dataset_facts(folder: Path) -> tuple[int, str | None]:
    """Image count and trigger word of a dataset or prepared folder, read from its manifest (nothing is prepared)."""
    import json

    from studio.train.start import dataset_trigger

    folder = Path(folder)
    for manifest in ("prepared.json", "manifest.json"):
        path = folder / manifest
        if path.is_file():
            items = json.loads(path.read_text(encoding="utf-8")).get("items", [])
            return len(items), dataset_trigger(folder)
    from studio.train.data import IMAGE_SUFFIXES

    return sum(1 for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES), None


def smallest_image_side(folder: Path) -> int | None:
    """The shortest side among a dataset's images as imported (a prepared copy: its dataset's originals too, since
    preparing does not add pixels); None for a plain folder (not read here)."""
    import json

    folder = Path(folder)
    sides = []
    for manifest in (folder / "prepared.json", folder / "manifest.json", folder.parent.parent / "manifest.json"):
        if manifest.is_file():
            items = json.loads(manifest.read_text(encoding="utf-8")).get("items", [])
            sides += [min(int(i["width"]), int(i["height"])) for i in items if "width" in i and "height" in i]
    return min(sides) if sides else None


def upscale_warning(config: RunConfig, smallest_side: int | None) -> str | None:
    resolution = config.training.resolution
    if smallest_side is None or smallest_side >= resolution:
        return None
    return (
        f"The smallest image is {smallest_side} px and this preset trains at {resolution} px: images are upscaled "
        f"{resolution / smallest_side:.0f}x and come out blurry. Set Resolution to {smallest_side} or use larger images."
    )
