"""Captions of a dataset: batch captioning with a captioner, the trigger word, and edits one by one or in bulk.

Batch captioning keeps captions a person already wrote unless asked to overwrite them. Every caption that
changes goes through the same normalisation, so the `.txt`, `metadata.jsonl` and the manifest agree. Edits
change the dataset in memory; `Dataset.save()` writes them (atomically, both conventions).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from studio.data.caption_text import TokenCounter, caption_issues, normalise_caption
from studio.data.captioners.base import Captioner, CaptioningCancelled
from studio.data.dataset import Dataset, DatasetItem
from studio.data.trigger import has_trigger, validate_trigger, with_trigger

_CAPTION_CODES = ("caption-empty", "caption-missing", "caption-too-long", "caption-not-utf8", "caption-conflict")


@dataclass
class CaptionReport:
    captioned: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # had a caption and overwrite was off
    cancelled: bool = False

    def summary(self) -> str:
        text = f"{len(self.captioned)} captioned, {len(self.kept)} kept as they were"
        return text + (" (cancelled: the rest keep their old captions)" if self.cancelled else "")

    def as_dict(self) -> dict:
        return {"summary": self.summary(), "captioned": self.captioned, "kept": self.kept, "cancelled": self.cancelled}


def set_caption(item: DatasetItem, text: str, source: str, counter: TokenCounter | None = None) -> None:
    """Replace one item's caption and refresh its caption warnings (other warnings stay)."""
    item.caption = normalise_caption(text)
    item.caption_source = source
    item.warnings = [w for w in item.warnings if w.code not in _CAPTION_CODES] + caption_issues(item.caption, counter)


def caption_dataset(
    dataset: Dataset,
    captioner: Captioner,
    overwrite: bool = False,
    trigger: str | None = None,
    counter: TokenCounter | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> CaptionReport:
    """Caption the images that have no caption (all of them with `overwrite`). Instance captions get the trigger.

    Cancelling keeps what was captioned so far; nothing is saved here (call `dataset.save()`).
    """
    trigger = validate_trigger(trigger) if trigger else dataset.trigger
    if trigger:
        dataset.trigger = trigger
    report = CaptionReport()
    todo = [item for item in dataset.items if overwrite or not item.caption]
    report.kept = [item.file for item in dataset.items if item not in todo]
    done_before = 0
    for role in ("instance", "class"):
        group = [item for item in todo if item.role == role]
        if not group:
            continue

        def progress(done: int, _total: int, offset: int = done_before) -> None:
            if on_progress:
                on_progress(offset + done, len(todo))

        try:
            captions = captioner.for_role(role).caption_batch(
                [dataset.images_dir / item.file for item in group], progress, cancel
            )
        except CaptioningCancelled as stop:
            captions, report.cancelled = stop.captions, True
        for item, text in zip(group, captions):
            if trigger and role == "instance":
                text = with_trigger(normalise_caption(text), trigger)
            set_caption(item, text, captioner.name, counter)
            report.captioned.append(item.file)
        if report.cancelled:
            break
        done_before += len(group)
    return report


# ---------------------------------------------------------------- edits


def _targets(dataset: Dataset, files: Iterable[str] | None) -> list[DatasetItem]:
    return dataset.items if files is None else [dataset.item(file) for file in files]


def edit_caption(dataset: Dataset, file: str, text: str, counter: TokenCounter | None = None) -> None:
    set_caption(dataset.item(file), text, "edited", counter)


def find_replace(
    dataset: Dataset,
    find: str,
    replace: str,
    regex: bool = False,
    files: Iterable[str] | None = None,
    counter: TokenCounter | None = None,
) -> int:
    """Replace text in captions (all, or `files`); returns how many captions changed."""
    if not find:
        raise ValueError("nothing to find: give the text to replace")
    try:
        pattern = re.compile(find if regex else re.escape(find))
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {find!r} ({error})") from error
    changed = 0
    for item in _targets(dataset, files):
        text = pattern.sub(replace, item.caption)
        if normalise_caption(text) != item.caption:
            set_caption(item, text, "edited", counter)
            changed += 1
    return changed


def add_prefix_suffix(
    dataset: Dataset,
    prefix: str = "",
    suffix: str = "",
    files: Iterable[str] | None = None,
    counter: TokenCounter | None = None,
) -> int:
    """Put text before and/or after captions (skipping captions that already start/end with it)."""
    changed = 0
    for item in _targets(dataset, files):
        text = item.caption
        if prefix and not text.startswith(prefix.strip()):
            text = f"{prefix}{text}" if prefix.endswith(" ") or not text else f"{prefix} {text}"
        if suffix and not text.endswith(suffix.strip()):
            text = f"{text}{suffix}" if suffix.startswith((" ", ",")) or not text else f"{text} {suffix}"
        if normalise_caption(text) != item.caption:
            set_caption(item, text, "edited", counter)
            changed += 1
    return changed


def apply_trigger(dataset: Dataset, trigger: str, counter: TokenCounter | None = None) -> int:
    """Make `trigger` the dataset's trigger and prepend it to every non-empty instance caption that lacks it."""
    dataset.trigger = validate_trigger(trigger)
    changed = 0
    for item in dataset.items:
        if item.role == "instance" and item.caption and not has_trigger(item.caption, dataset.trigger):
            set_caption(item, with_trigger(item.caption, dataset.trigger), "edited", counter)
            changed += 1
    return changed
