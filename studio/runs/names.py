"""What a person calls a run: a name they can change ("stars · LoRA") and the trigger word that calls up what it
learnt, kept in the run folder beside the id.

Ids (`20261206-043312-lora-1f2e`) stay what files and APIs use; every list, picker, grid and saved-mix note shows
`run_label` instead, so one function decides how a run reads everywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from studio.data.files import write_json_atomic
from studio.data.trigger import dataset_trigger, infer_trigger
from studio.runs.folder import read_config
from studio.runs.layout import DATASET, NAME_FILE

MAX_NAME = 80
LABELS_BEFORE_NAMES = {
    "lora": "LoRA", "dreambooth": "DreamBooth", "textual_inversion": "Textual Inversion", "finetune": "Full fine-tune",
    "svdiff": "SVDiff (spectral shifts)",
}  # fmt: skip
# the example datasets are called example-<key>; in a run's name the prefix says nothing
_EXAMPLE_PREFIX = "example-"


@dataclass(frozen=True)
class RunIdentity:
    run_id: str
    name: str
    trigger: str | None

    @property
    def label(self) -> str:
        """How the run reads in a list: 'stars · LoRA · trigger zq'."""
        return f"{self.name} · trigger {self.trigger}" if self.trigger else self.name


def method_label(method: str, use_lora: bool = False) -> str:
    """How a run of the five methods that existed before names read in lists (runs made since carry their name,
    which their method's own label made: a new method needs no entry here)."""
    if method == "dreambooth" and use_lora:
        return "DreamBooth LoRA"
    return LABELS_BEFORE_NAMES.get(method, method)


def dataset_display_name(source: str | Path) -> str:
    """'stars' for data/datasets/example-stars, and for its prepared copies (prepared/<variant>) too."""
    path = Path(source)
    if path.parent.name == "prepared":
        path = path.parent.parent
    return path.name.removeprefix(_EXAMPLE_PREFIX) or str(source)


def default_name(label: str, dataset: str | Path) -> str:
    return f"{dataset_display_name(dataset)} · {label}"


def check_name(name: str) -> str:
    name = " ".join(str(name or "").split())  # one line, single spaces: it sits in dropdowns and table cells
    if not name:
        raise ValueError("a run's name cannot be empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"a run's name is at most {MAX_NAME} characters, not {len(name)}")
    return name


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or 'name 2', 'name 3'... when another run is called that already (two 'stars · LoRA' in a picker
    would look like one)."""
    if name not in taken:
        return name
    counter = 2
    while f"{name} {counter}" in taken:
        counter += 1
    return f"{name} {counter}"


def write_identity(run_dir: Path, name: str, trigger: str | None) -> None:
    write_json_atomic(Path(run_dir) / NAME_FILE, {"name": check_name(name), "trigger": trigger or None})


def name_new_run(run_dir: Path, label: str, dataset: str | Path, trigger: str | None) -> str:
    """Give a new run its default name (unique among its siblings) and record its trigger; returns the name."""
    run_dir = Path(run_dir)
    taken = {identity(folder).name for folder in run_dir.parent.iterdir() if folder != run_dir and folder.is_dir()}
    name = unique_name(default_name(label, dataset), taken)
    write_identity(run_dir, name, trigger)
    return name


def rename_run(run_dir: Path, name: str) -> RunIdentity:
    """Give a run a new name; its id, folder and files stay as they are."""
    current = identity(run_dir)
    write_identity(run_dir, name, current.trigger)
    return identity(run_dir)


def identity(run_dir: Path) -> RunIdentity:
    """The run's name and trigger: from name.json, else worked out from its config and dataset (older runs)."""
    run_dir = Path(run_dir)
    try:
        data = json.loads((run_dir / NAME_FILE).read_text(encoding="utf-8"))
        return RunIdentity(run_dir.name, check_name(data["name"]), data.get("trigger") or None)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return _worked_out(run_dir)


def run_label(run_dir: Path) -> str:
    return identity(run_dir).label


def _worked_out(run_dir: Path) -> RunIdentity:
    """A run made before names existed: its dataset and method, and the trigger its config or dataset holds."""
    try:
        config = read_config(run_dir)
        manifest = json.loads((run_dir / DATASET).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return RunIdentity(run_dir.name, run_dir.name, None)
    method = str(config.get("method", ""))
    options = config.get(method) if isinstance(config.get(method), dict) else {}
    label = method_label(method, bool(options.get("use_lora", False)))
    name = default_name(label, manifest.get("source", ""))
    captions = [str(item.get("caption", "")) for item in manifest.get("items", [])]
    own = options.get("trigger") or options.get("placeholder_token")  # DreamBooth's, Textual Inversion's
    return RunIdentity(run_dir.name, name, run_trigger(own, manifest.get("source", ""), captions))


def run_trigger(own_trigger: str | None, dataset: str | Path, captions: list[str]) -> str | None:
    """The word that calls up what a run learnt: the method's own trigger (its registered trigger field, e.g.
    DreamBooth's `trigger`), else the dataset's trigger word, else a word every caption shares that the shapes
    world does not use."""
    if own_trigger:
        return str(own_trigger)
    try:
        word = dataset_trigger(dataset)
    except (OSError, ValueError):
        word = None
    return word or infer_trigger(captions)
