"""The trigger word: prepended to captions, and enforced so a caption without it is never used silently.

Only *instance* images carry the trigger. Class (prior-preservation) images must not: they teach the model
what a plain "dog" looks like, and the trigger in their captions would tie it to every dog.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from studio.data.dataset import datasets_root
from studio.data.issues import Issue
from studio.pocket.world import ALL_SHAPES, BASE_BACKGROUNDS, PALETTE


class _Captioned(Protocol):
    file: str
    role: str
    caption: str


class MissingTriggerError(ValueError):
    """Captions that break the trigger rule; `files` lists them."""

    def __init__(self, trigger: str, files: list[str], problem: str = "lack") -> None:
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        super().__init__(f"{len(files)} caption(s) {problem} the trigger '{trigger}': {shown}")
        self.trigger = trigger
        self.files = files


def validate_trigger(trigger: str) -> str:
    trigger = trigger.strip()
    if not trigger or "\n" in trigger or "," in trigger:
        raise ValueError(f"a trigger must be a non-empty word or phrase without commas or newlines, got {trigger!r}")
    return trigger


def _pattern(trigger: str) -> re.Pattern[str]:
    # whole words only ("sks" is not in "asks"); case-insensitive because CLIP lower-cases everything it reads
    return re.compile(rf"(?<!\w){re.escape(trigger)}(?!\w)", re.IGNORECASE)


def has_trigger(caption: str, trigger: str) -> bool:
    return bool(_pattern(trigger).search(caption))


def with_trigger(caption: str, trigger: str, separator: str = ", ") -> str:
    """`caption` with the trigger in front, unless it already holds it."""
    if has_trigger(caption, trigger):
        return caption
    return f"{trigger}{separator}{caption}" if caption else trigger


def trigger_issues(items: Iterable[_Captioned], trigger: str | None) -> dict[str, Issue]:
    """File -> problem: instance captions without the trigger, class captions with it."""
    if not trigger:
        return {}
    problems = {}
    for item in items:
        present = has_trigger(item.caption, trigger)
        if item.role == "instance" and not present:
            problems[item.file] = Issue("trigger-missing", f"the caption lacks the trigger '{trigger}'")
        elif item.role == "class" and present:
            problems[item.file] = Issue(
                "trigger-in-class-caption", f"a class image's caption names the trigger '{trigger}'"
            )
    return problems


def enforce_trigger_on_items(items: Iterable[_Captioned], trigger: str) -> None:
    """Raise MissingTriggerError unless instance captions hold the trigger and class captions do not."""
    problems = trigger_issues(items, validate_trigger(trigger))
    missing = [file for file, issue in problems.items() if issue.code == "trigger-missing"]
    if missing:
        raise MissingTriggerError(trigger, missing)
    if problems:
        raise MissingTriggerError(trigger, list(problems), problem="are class images but contain")


# the words of the pocket world's captions: never a trigger
_POCKET_WORDS = {"a", "an", "on", "background", "the", "of", "in", "style"}


def _pocket_vocabulary() -> set[str]:
    return _POCKET_WORDS | set(ALL_SHAPES) | set(BASE_BACKGROUNDS) | set(PALETTE)


def infer_trigger(captions: list[str]) -> str | None:
    """A word in every caption that the shapes world never uses ('zq' in 'a zq on a black background'); None
    unless exactly one word fits, so a guess is never one of two."""
    words = [set(re.findall(r"[\w<>-]+", c.lower())) for c in captions if c.strip()]
    if not words:
        return None
    candidates = sorted(set.intersection(*words) - _pocket_vocabulary())
    return candidates[0] if len(candidates) == 1 else None


def dataset_manifest_of(dataset: str | Path) -> dict | None:
    """The manifest of a dataset (a name under datasets/, its folder, or one of its prepared/<variant> folders);
    None for a plain folder of images."""
    path = Path(dataset)
    if not path.exists():
        path = datasets_root() / str(dataset)
    for candidate in (path, path.parent.parent):
        manifest = candidate / "manifest.json"
        if manifest.is_file():
            return json.loads(manifest.read_text(encoding="utf-8"))
    return None


def dataset_trigger(dataset: str | Path) -> str | None:
    """The trigger word a dataset was saved with, if it is a dataset the studio made."""
    manifest = dataset_manifest_of(dataset)
    return manifest.get("trigger") if manifest else None
