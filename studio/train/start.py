"""Starting, resuming and exporting runs: the functions the CLI (and later the UI's subprocess) call."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from studio import runs
from studio.data.trigger import dataset_manifest_of, dataset_trigger, infer_trigger
from studio.train import methods
from studio.train.config import RunConfig
from studio.train.data import dataset_manifest, load_training_images


def create_run(config: RunConfig, dataset: str | Path, run_id: str | None = None, root: Path | None = None) -> Path:
    """Check the dataset, the model, the device and the fit (preflight.py), then write the run folder (resolved
    config + dataset manifest). Nothing is loaded yet.

    The config was validated when it was built, so a bad config never gets this far.
    """
    from studio.runs import names as run_names
    from studio.train.preflight import check_run

    items = load_training_images(dataset, config.training.resolution)
    fill_trigger(config, dataset)
    # absolute and checked now, so a resume from anywhere merges the same files, and a typo fails before a load
    config.training.base_loras = [_located_base_lora(text) for text in config.training.base_loras]
    check_run(config, len(items), root or runs.runs_root())  # model, device, precision, memory, disk
    source = Path(dataset)
    source_text = str(source.resolve()) if source.exists() else str(dataset)
    manifest = dataset_manifest(source_text, items)
    folder = runs.create_run_folder(config.to_yaml(), manifest, run_id or runs.new_run_id(config.method), root)
    spec = methods.get(config.method)
    own_trigger = getattr(config.method_config, spec.trigger_field) if spec.trigger_field else None
    trigger = run_names.run_trigger(own_trigger, source_text, [item.caption for item in items])
    run_names.name_new_run(folder, methods.facts(config).label or spec.label, source_text, trigger)
    return folder


def _located_base_lora(text: str) -> str:
    from studio.adapters.stack import lora_source, split_weight

    path, weight = split_weight(text)
    try:
        source = lora_source(path)
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(f"base_loras: {error}") from None
    if source.is_file() and source.suffix != ".safetensors":  # what merging reads; not /etc/passwd, found later
        raise ValueError(f"base_loras: {source} is not a LoRA: give a .safetensors file, a run or a checkpoint")
    return f"{source.resolve()}:{weight:g}"


def run_training(run_dir: Path, on_event: Callable[[dict], None] | None = None, export: bool = True) -> str:
    """The one entry point (CLI, UI subprocess, tests): train a run folder from its latest checkpoint, if any."""
    from studio.runtime import pocket_training_threads
    from studio.train.estimate import peak_memory
    from studio.train.export import export_trainer
    from studio.train.loop import TrainingStopped, prepare_trainer, train  # torch: only when a run trains

    run_dir = Path(run_dir)
    try:
        trainer = prepare_trainer(run_dir, on_event)
    except (ValueError, FileNotFoundError, OSError) as error:
        if int(os.environ.get("RANK", "0")) == 0:  # one writer, also before the accelerator exists
            runs.append_event(run_dir, "failed", reason=str(error))
        raise
    if trainer.step >= trainer.training.steps and runs.replay(run_dir).status == "finished":
        return "finished"
    try:
        with pocket_training_threads(trainer.training.base_model, trainer.accelerator.device.type):
            outcome = train(trainer)
        if outcome == "finished":
            if export and trainer.accelerator.is_main_process:
                export_trainer(trainer)
            trainer.emit("finished", step=trainer.step, **peak_memory(trainer.accelerator.device.type))
    except TrainingStopped:
        raise
    except Exception as error:
        trainer.emit("failed", step=trainer.step, reason=f"{type(error).__name__}: {error}")
        raise
    return outcome


def resume_run(run: str | Path, on_event: Callable[[dict], None] | None = None) -> str:
    """Continue a cancelled or interrupted run from its latest checkpoint."""
    run_dir = runs.resolve_run(run)
    status = runs.replay(run_dir).status
    if status == "running":
        raise ValueError(f"run {run_dir.name} is still running")
    if status == "finished":
        raise ValueError(f"run {run_dir.name} has already finished")
    return run_training(run_dir, on_event)


def export_run(run: str | Path, verify: bool = True) -> list[Path]:
    """(Re-)export a run's latest checkpoint into outputs/."""
    from studio.runs.checkpoints import list_checkpoints
    from studio.train.export import export_trainer
    from studio.train.loop import prepare_trainer

    run_dir = runs.resolve_run(run)
    if not list_checkpoints(run_dir):
        raise ValueError(f"run {run_dir.name} has no checkpoint to export yet")
    return export_trainer(prepare_trainer(run_dir), verify=verify)


TRIGGER_PLACEHOLDER = "<trigger>"
CLASS_PLACEHOLDER = "<class>"


def _placed(config: RunConfig, placeholder: str) -> list[str]:
    """The settings that hold `placeholder`: sample_prompts and the method's own words."""
    import dataclasses

    method = config.method_config
    names = ["sample_prompts"] if any(placeholder in p for p in config.training.sample_prompts) else []
    return names + [
        f.name
        for f in dataclasses.fields(method)
        if isinstance(getattr(method, f.name), str) and placeholder in getattr(method, f.name)
    ]


def fill_trigger(config: RunConfig, dataset: str | Path) -> None:
    """Presets write `<trigger>` where the dataset's own trigger word goes and `<class>` where its class noun goes
    (the word after the trigger in its captions, 'dog' in 'a photo of zwx dog'): in sample prompts, and in a
    method's words (DreamBooth's trigger, instance and class prompts). The method's settings are validated again
    once filled."""
    words = {}
    for placeholder, find, how in (
        (
            TRIGGER_PLACEHOLDER,
            # a plain folder of images + .txt names no trigger; a made-up word every caption holds is one
            lambda d: dataset_trigger(d) or infer_trigger(dataset_captions(d)),
            "has no trigger word; set one on the dataset (one word in every caption is taken as it)",
        ),
        (
            CLASS_PLACEHOLDER,
            dataset_class,
            "names no class: its captions do not put one noun after the trigger (as in 'a photo of zwx dog')",
        ),
    ):
        where = _placed(config, placeholder)
        if not where:
            continue
        word = find(dataset)
        if not word:
            example = next((name for name in where if name != "sample_prompts"), "sample_prompts")
            raise ValueError(
                f"{', '.join(where)} use {placeholder} but dataset {str(dataset)!r} {how}, or --set {example}=..."
            )
        words[placeholder] = word
    if words:
        put_words(config, words)


def put_trigger(config: RunConfig, trigger: str) -> None:
    """Write `trigger` wherever the config says <trigger> (sample prompts and the method's words)."""
    put_words(config, {TRIGGER_PLACEHOLDER: trigger})


def put_words(config: RunConfig, words: dict[str, str]) -> None:
    """Write each placeholder's word wherever the config holds it (sample prompts and the method's words)."""
    import dataclasses

    def filled(text: str) -> str:
        for placeholder, word in words.items():
            text = text.replace(placeholder, word)
        return text

    method = config.method_config
    config.training.sample_prompts = [filled(p) for p in config.training.sample_prompts]
    changed = {
        f.name: filled(getattr(method, f.name))
        for f in dataclasses.fields(method)
        if isinstance(getattr(method, f.name), str) and filled(getattr(method, f.name)) != getattr(method, f.name)
    }
    if changed:
        config.method_config = dataclasses.replace(method, **changed)


def swap_trigger(prompts: list[str], old: set[str], new: str | None) -> list[str]:
    """Sample prompts written for another dataset's trigger ('a hgz on ...'), rewritten for this one's ('a zq on
    ...'); with no trigger here they get <trigger> back, which the start then asks for. Whole words only."""
    import re

    replacement = new or TRIGGER_PLACEHOLDER
    for word in sorted({w for w in old if w and w != new}, key=len, reverse=True):
        pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
        prompts = [pattern.sub(lambda _: replacement, prompt) for prompt in prompts]
    return prompts


NOT_A_CLASS = {"a", "an", "the", "on", "in", "of", "with", "and", "at", "by", "is", "photo", "picture", "image"}


def dataset_class(dataset: str | Path) -> str | None:
    """The dataset's class noun: its manifest's `class` when set, else the word that follows the trigger in most
    instance captions ('dog' in 'a photo of zwx dog', DreamBooth's own caption form)."""
    import collections
    import re

    manifest = dataset_manifest_of(dataset)
    if manifest is None:
        return None
    if manifest.get("class"):
        return manifest["class"]
    trigger = manifest.get("trigger")
    items = [i for i in manifest.get("items", []) if i.get("role", "instance") == "instance"]
    if not trigger or not items:
        return None
    after = re.compile(rf"(?<!\w){re.escape(trigger)}\W*\s+(\w+)", re.IGNORECASE)
    found = [m.group(1).lower() for i in items if (m := after.search(i.get("caption", "")))]
    counts = collections.Counter(word for word in found if word not in NOT_A_CLASS and not word.isdigit())
    if not counts:
        return None
    word, count = counts.most_common(1)[0]
    return word if count * 2 > len(items) else None  # most captions agree, or there is no class to name


def dataset_captions(dataset: str | Path) -> list[str]:
    """The captions of a dataset (its manifest) or of a plain folder (its .txt files), without preparing it."""
    import json

    from studio.data.dataset import datasets_root
    from studio.train.data import IMAGE_SUFFIXES

    path = Path(dataset)
    if not path.exists():
        path = datasets_root() / str(dataset)
    for manifest in (path / "prepared.json", path / "manifest.json"):
        if manifest.is_file():
            return [str(item.get("caption", "")) for item in json.loads(manifest.read_text(encoding="utf-8"))["items"]]
    if not path.is_dir():
        return []
    images = [p for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    sidecars = [p.with_suffix(".txt") for p in images]
    return [s.read_text(encoding="utf-8").strip() if s.is_file() else "" for s in sidecars]
