"""What a run was taught: its trigger, the phrase that names the subject, the class it belongs to, its images.

Read from the run folder alone (config.yaml and dataset.json), so any run, finished or not, can be scored.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from studio import runs
from studio.data.trigger import dataset_trigger, infer_trigger
from studio.train.config import RunConfig, load_config_file
from studio.train.data import load_training_images
from studio.train.methods import get

_LEADING = re.compile(r"^(a photo of |a picture of |an image of |a |an |the )+", re.IGNORECASE)
# where the subject's noun phrase ends and its setting begins: "sks dog | on the beach"
_SETTING = re.compile(r"\s+(on|in|with|at|under|beside|near)\s.*$|,.*$", re.IGNORECASE)


@dataclass(frozen=True)
class Subject:
    trigger: str
    phrase: str  # how prompts name the subject: "sks shape", "zq", "<concept>"
    class_phrase: str | None  # the same without the trigger ("shape", "dog"), when the run says
    trained_prompts: tuple[str, ...]  # the prompts the subject was trained with (up to a few)
    images: tuple[Path, ...]  # the training images


def noun_phrase(prompt: str) -> str:
    """The subject's noun phrase: 'a photo of sks dog' -> 'sks dog', 'a sks diamond on a black background' ->
    'sks diamond'."""
    return _SETTING.sub("", _LEADING.sub("", prompt.strip())).strip()


def run_subject(run_dir: Path, trigger: str | None = None) -> Subject:
    """The subject of a run; `trigger` overrides what the run's config and dataset say."""
    config: RunConfig = load_config_file(run_dir / runs.CONFIG)
    manifest = json.loads((run_dir / runs.DATASET).read_text(encoding="utf-8"))
    images = tuple(_training_image_paths(manifest, config.training.resolution))
    captions = [item["caption"] for item in manifest["items"]]
    read_subject = get(config.method).subject  # a method that names its subject itself (DreamBooth, TI)
    if read_subject is not None:
        words = read_subject(config.method_config, trigger)
        trigger, phrase, prompts = words.trigger, noun_phrase(words.phrase), words.prompts
        class_phrase = noun_phrase(words.class_phrase) if words.class_phrase else None
    else:
        trigger = trigger or _dataset_trigger(manifest["source"]) or infer_trigger(captions)
        if not trigger:
            raise ValueError(
                f"cannot tell the trigger word of run {run_dir.name} (its dataset names none); pass --trigger WORD"
            )
        phrase, class_phrase = trigger, None
        prompts = tuple(dict.fromkeys(c for c in captions if trigger.lower() in c.lower()))[:4]
        prompts = prompts or (f"a {trigger}",)
    return Subject(trigger, phrase, class_phrase, prompts, images)


def _dataset_trigger(source: str) -> str | None:
    try:
        return dataset_trigger(source)
    except (OSError, ValueError):
        return None


def _training_image_paths(manifest: dict, resolution: int) -> list[Path]:
    """The files the run trained on, checked against the hashes it recorded."""
    items = load_training_images(manifest["source"], resolution)
    recorded = Counter(i["sha256"] for i in manifest["items"])
    found = [i.path for i in items if i.sha256 in recorded]
    if not found:
        raise ValueError(f"the training images of {manifest['source']!r} are gone or changed; cannot compare to them")
    return found
