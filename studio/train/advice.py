"""Before a run starts: warnings about risky settings, and an estimate of its time and memory.

The warnings are the field's known anti-patterns (a learning rate far outside the method's usual range, too few
images, DreamBooth without prior preservation, a generic trigger word, so many repeats that the model memorises
the images). They advise; they never block a start.

The estimate (time, memory, disk) is studio/train/estimate.py's; `report` gives both as lines for the CLI.
"""

from __future__ import annotations

from pathlib import Path

from studio.data.dataset import datasets_root
from studio.data.trigger import dataset_trigger
from studio.train import estimate as estimates
from studio.train.config import RunConfig
from studio.train.data import IMAGE_SUFFIXES
from studio.train.estimate import Estimate
from studio.train.methods import facts, get
from studio.train.start import TRIGGER_PLACEHOLDER

# a rate more than LR_FACTOR outside the method's usual range (its registry facts) is "far outside"
LR_FACTOR = 3.0
MIN_IMAGES = 3
MAX_REPEATS = 400  # times each image is seen; beyond this a small dataset is usually memorised
GENERIC_TRIGGERS = {
    "person", "man", "woman", "girl", "boy", "people", "dog", "cat", "car", "style", "art", "photo", "picture",
    "face", "portrait", "shape", "object", "thing", "me", "subject", "character", "animal",
}  # fmt: skip
POCKET_RESOLUTION = 64


def trigger_word(config: RunConfig, dataset_trigger: str | None) -> str | None:
    """The method's own word (DreamBooth's trigger, Textual Inversion's token), else the dataset's."""
    field = get(config.method).trigger_field
    if field is None:
        return dataset_trigger

    word = getattr(config.method_config, field)  # a preset's <trigger> is the dataset's word, filled in at the start
    return dataset_trigger if word == TRIGGER_PLACEHOLDER else word


def risky_settings(config: RunConfig, image_count: int, dataset_trigger: str | None = None) -> list[str]:
    """One sentence per risky setting, most serious first."""
    training, spec = config.training, get(config.method)
    found = []
    low, high = facts(config).learning_rates
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
    if spec.advice is not None:  # the method's own anti-patterns (DreamBooth without prior preservation)
        found += spec.advice(config.method_config)
    trigger = trigger_word(config, dataset_trigger)
    if trigger and trigger.strip("<>").lower() in GENERIC_TRIGGERS:
        found.append(
            f"The trigger word '{trigger}' is a common word: the model already means something by it. "
            "Use a rare token such as 'sks' or 'zq'."
        )
    elif not trigger and spec.missing_trigger:
        found.append(spec.missing_trigger)
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


def estimate(config: RunConfig, runs_root: Path | None = None, image_count: int = 4) -> Estimate:
    """Time, memory (RAM and GPU) and disk of a run before it starts: studio/train/estimate.py."""
    return estimates.estimate(config, runs_root, image_count)


def report(config: RunConfig, dataset: str | Path, runs_root: Path | None = None) -> list[str]:
    """What the Train tab shows before Start, as lines for the CLI: the estimate, then each risky setting."""
    count, trigger = dataset_facts(dataset_folder(dataset))
    lines = [f"Estimate: {estimate(config, runs_root, count or 4).describe()}"]
    return lines + [f"Warning: {risk}" for risk in risky_settings(config, count, trigger)]


def dataset_folder(dataset: str | Path) -> Path:
    """A dataset given as a folder, or by its name in the datasets folder."""
    path = Path(dataset)
    return path if path.exists() else datasets_root() / str(dataset)


def dataset_facts(folder: Path) -> tuple[int, str | None]:
    """Image count and trigger word of a dataset or prepared folder, read from its manifest (nothing is prepared)."""
    import json

    folder = Path(folder)
    for manifest in ("prepared.json", "manifest.json"):
        path = folder / manifest
        if path.is_file():
            items = json.loads(path.read_text(encoding="utf-8")).get("items", [])
            return len(items), dataset_trigger(folder)

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
