"""What one `queue add` puts in the queue: the cartesian product of the swept values, times the datasets.

Everything is checked before anything is queued: each combination's config is built (an unknown key or a bad
value is refused, naming the --sweep), each dataset is read the way a run would read it. So a sweep of twelve
never fails on its ninth entry for a typo.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from studio.paths import is_pocket_model
from studio.train.config import RunConfig, override_config
from studio.train.data import load_training_images
from studio.train.start import fill_trigger


@dataclass
class PlannedEntry:
    config: RunConfig
    dataset: str
    swept: dict[str, str] = field(default_factory=dict)


def split_values(text: str) -> list[str]:
    """`1e-4,3e-4` -> ["1e-4", "3e-4"]; commas inside [brackets] or quotes belong to the value (lists, prompts)."""
    values, current, depth, quote = [], "", 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(current.strip())
            current = ""
            continue
        current += char
    values.append(current.strip())
    return values


def parse_sweeps(pairs: list[str]) -> dict[str, list[str]]:
    """`--sweep key=v1,v2` pairs -> {key: [v1, v2]}, keys as `--set` takes them."""
    out: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--sweep expects key=value1,value2, got {pair!r}")
        if key in out:
            raise ValueError(f"--sweep {key} is given twice; list all its values once: {key}=a,b,c")
        values = split_values(text)
        if any(not v for v in values):
            raise ValueError(f"--sweep {key}: an empty value in {text!r}")
        if len(set(values)) != len(values):
            raise ValueError(f"--sweep {key}: a value is listed twice in {text!r}")
        out[key] = values
    return out


def combinations(sweeps: dict[str, list[str]]) -> list[dict[str, str]]:
    """The cartesian product, first key slowest: {lr: [a, b], rank: [4, 8]} -> a/4, a/8, b/4, b/8."""
    keys = list(sweeps)
    return [dict(zip(keys, values)) for values in itertools.product(*(sweeps[k] for k in keys))]


def dataset_folders(parent: Path) -> list[Path]:
    """A folder batch: every sub-folder of `parent` (one LoRA per style folder), in name order."""
    parent = Path(parent)
    if not parent.is_dir():
        raise FileNotFoundError(f"no folder {str(parent)!r} to take datasets from")
    folders = sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ValueError(f"{str(parent)!r} has no sub-folders; put each dataset in a folder of its own")
    return folders


def plan(base: RunConfig, datasets: list[str | Path], sweeps: dict[str, list[str]]) -> list[PlannedEntry]:
    """Every (dataset, combination) entry, each config built and each dataset checked. Raises ValueError /
    FileNotFoundError for the first bad one, before anything is queued."""
    if not datasets:
        raise ValueError("give a dataset to train on")
    configs = []
    for combo in combinations(sweeps):
        try:
            configs.append((override_config(base, combo), combo))
        except ValueError as error:
            raise ValueError(f"--sweep {', '.join(combo)}: {error}") from None
    checked = [check_dataset(configs[0][0], dataset) for dataset in datasets]
    entries = []
    for dataset in checked:
        for config, combo in configs:
            check_trigger(config, dataset)
            entries.append(PlannedEntry(config, dataset, combo))
    return entries


def check_dataset(config: RunConfig, dataset: str | Path) -> str:
    """A run would accept this dataset (it exists and has images); returns it as the queue stores it (a folder
    as an absolute path, so `queue run` from another directory finds it; a dataset name as it is)."""
    load_training_images(dataset, config.training.resolution)
    path = Path(dataset)
    return str(path.resolve()) if path.exists() else str(dataset)


def check_trigger(config: RunConfig, dataset: str) -> None:
    """Sample prompts with <trigger> need a dataset that names its trigger word (create_run fills it in then)."""
    fill_trigger(copy.deepcopy(config), dataset)


def scored_by_default(config: RunConfig) -> bool:
    """The scorecard is exact and quick on the pocket model; other models need a CLIP model named for it."""
    return is_pocket_model(config.training.base_model)


def parse_sweep_lines(text: str) -> dict[str, list[str]]:
    """The UI's sweep box: one `key=v1,v2` per line (or separated by `;`); empty means no sweep."""
    pairs = [part.strip() for line in (text or "").splitlines() for part in line.split(";")]
    return parse_sweeps([pair for pair in pairs if pair])
