"""Starting, resuming and exporting runs: the functions the CLI (and later the UI's subprocess) call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from studio.train import runs
from studio.train.config import RunConfig
from studio.train.data import dataset_manifest, load_training_images


def create_run(config: RunConfig, dataset: str | Path, run_id: str | None = None, root: Path | None = None) -> Path:
    """Check the dataset, the model, the device and the fit (preflight.py), then write the run folder (resolved
    config + dataset manifest). Nothing is loaded yet.

    The config was validated when it was built, so a bad config never gets this far.
    """
    from studio.train.preflight import check_run

    items = load_training_images(dataset, config.training.resolution)
    fill_trigger(config, dataset)
    # absolute and checked now, so a resume from anywhere merges the same files, and a typo fails before a load
    config.training.base_loras = [_located_base_lora(text) for text in config.training.base_loras]
    check_run(config, len(items), root or runs.runs_root())  # model, device, precision, memory, disk
    source = Path(dataset)
    source_text = str(source.resolve()) if source.exists() else str(dataset)
    manifest = dataset_manifest(source_text, items)
    return runs.create_run_folder(config.to_yaml(), manifest, run_id or runs.new_run_id(config.method), root)


def _located_base_lora(text: str) -> str:
    from studio.generate.adapters import lora_source, split_weight

    path, weight = split_weight(text)
    try:
        source = lora_source(path)
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(f"base_loras: {error}") from None
    if source.is_file() and source.suffix != ".safetensors":  # what merging reads; not /etc/passwd, found later
        raise ValueError(f"base_loras: {source} is not a LoRA: give a .safetensors file, a run or a checkpoint")
    return f"{source.resolve()}:{weight:g}"


def resume_run(run: str | Path, on_event: Callable[[dict], None] | None = None) -> str:
    """Continue a cancelled or interrupted run from its latest checkpoint."""
    from studio.train.loop import run_training

    run_dir = runs.resolve_run(run)
    status = runs.replay(run_dir).status
    if status == "running":
        raise ValueError(f"run {run_dir.name} is still running")
    if status == "finished":
        raise ValueError(f"run {run_dir.name} has already finished")
    return run_training(run_dir, on_event)


def export_run(run: str | Path, verify: bool = True) -> list[Path]:
    """(Re-)export a run's latest checkpoint into outputs/."""
    from studio.train.checkpoints import list_checkpoints
    from studio.train.export import export_trainer
    from studio.train.loop import prepare_trainer

    run_dir = runs.resolve_run(run)
    if not list_checkpoints(run_dir):
        raise ValueError(f"run {run_dir.name} has no checkpoint to export yet")
    return export_trainer(prepare_trainer(run_dir), verify=verify)


TRIGGER_PLACEHOLDER = "<trigger>"


def fill_trigger(config: RunConfig, dataset: str | Path) -> None:
    """Presets write `<trigger>` where the dataset's own trigger word goes: in sample prompts, and in a method's
    words (DreamBooth's trigger and instance prompt). The method's settings are validated again once filled."""
    import dataclasses

    prompts = config.training.sample_prompts
    method = config.method_config
    words = {
        f.name: getattr(method, f.name)
        for f in dataclasses.fields(method)
        if isinstance(getattr(method, f.name), str) and TRIGGER_PLACEHOLDER in getattr(method, f.name)
    }
    if not words and not any(TRIGGER_PLACEHOLDER in p for p in prompts):
        return
    trigger = dataset_trigger(dataset)
    if not trigger:
        where = ", ".join(["sample_prompts"] * any(TRIGGER_PLACEHOLDER in p for p in prompts) + list(words))
        raise ValueError(
            f"{where} use {TRIGGER_PLACEHOLDER} but dataset {str(dataset)!r} has no trigger word; "
            f"set one on the dataset or --set {next(iter(words), 'sample_prompts')}=..."
        )
    put_trigger(config, trigger)


def put_trigger(config: RunConfig, trigger: str) -> None:
    """Write `trigger` wherever the config says <trigger> (sample prompts and the method's words)."""
    import dataclasses

    method = config.method_config
    config.training.sample_prompts = [p.replace(TRIGGER_PLACEHOLDER, trigger) for p in config.training.sample_prompts]
    filled = {
        f.name: getattr(method, f.name).replace(TRIGGER_PLACEHOLDER, trigger)
        for f in dataclasses.fields(method)
        if isinstance(getattr(method, f.name), str) and TRIGGER_PLACEHOLDER in getattr(method, f.name)
    }
    if filled:
        config.method_config = dataclasses.replace(method, **filled)


def dataset_trigger(dataset: str | Path) -> str | None:
    import json

    from studio.data.dataset import datasets_root

    path = Path(dataset)
    if not path.exists():
        path = datasets_root() / str(dataset)
    for candidate in (path, path.parent.parent):  # a dataset, or one of its prepared/<variant> folders
        manifest = candidate / "manifest.json"
        if manifest.is_file():
            return json.loads(manifest.read_text(encoding="utf-8")).get("trigger")
    return None
