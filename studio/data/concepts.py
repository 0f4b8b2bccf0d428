"""Concepts from folder names, and the per-concept balance report.

Folder conventions understood on import:
- kohya: `10_sks dog/` means concept "sks dog", each image repeated 10 times per epoch;
- DreamBooth: `instance/` for the subject, `class/` (also `class_images/`, `reg/`, `regularization/`) for the
  prior-preservation images of the plain class.
Anything else (a wrapping folder such as `my_photos/`) does not change the concept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Protocol

from studio.data.issues import Issue

_KOHYA = re.compile(r"^(\d+)_(.+)$")
CLASS_FOLDERS = {"class", "class_images", "class-images", "reg", "regularization", "regularisation"}
INSTANCE_FOLDERS = {"instance", "instance_images", "instance-images"}
MAX_REPEATS = 1000
# for several instance concepts, the most-seen one may be seen at most this many times as often as the least
IMBALANCE_RATIO = 2.0


@dataclass(frozen=True)
class Concept:
    name: str = "instance"
    role: str = "instance"  # "instance" (what is learnt) or "class" (prior preservation)
    repeats: int = 1


def concept_from_path(path: PurePosixPath) -> Concept:
    """The concept an uploaded file belongs to, from the folders above it (nearest kohya folder wins)."""
    folders = [part for part in path.parent.parts]
    role = "class" if any(part.lower() in CLASS_FOLDERS for part in folders) else "instance"
    for part in reversed(folders):
        match = _KOHYA.match(part)
        if match:
            repeats = int(match.group(1))
            if not 1 <= repeats <= MAX_REPEATS:
                raise ValueError(f"folder '{part}': repeats must be 1 to {MAX_REPEATS}")
            return Concept(match.group(2).strip(), role, repeats)
    return Concept(role, role, 1)


class _Item(Protocol):
    concept: str
    role: str
    repeats: int


@dataclass
class ConceptCount:
    role: str
    images: int = 0
    samples: int = 0  # images x repeats: how often the concept is seen per epoch


@dataclass
class Balance:
    concepts: dict[str, ConceptCount] = field(default_factory=dict)
    warnings: list[Issue] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "concepts": {name: vars(count) for name, count in self.concepts.items()},
            "warnings": [w.as_dict() for w in self.warnings],
        }


def balance(items: Iterable[_Item]) -> Balance:
    """Per-concept counts; warnings for imbalanced instance concepts and for thin class sets."""
    report = Balance()
    for item in items:
        count = report.concepts.setdefault(item.concept, ConceptCount(item.role))
        count.images += 1
        count.samples += item.repeats
    instance = {name: c for name, c in report.concepts.items() if c.role == "instance"}
    if len(instance) > 1:
        most = max(instance, key=lambda n: instance[n].samples)
        least = min(instance, key=lambda n: instance[n].samples)
        if instance[most].samples > IMBALANCE_RATIO * instance[least].samples:
            report.warnings.append(
                Issue(
                    "concept-imbalance",
                    f"'{most}' is seen {instance[most].samples} times per epoch and '{least}' only "
                    f"{instance[least].samples}; add images or repeats to '{least}' so both are learnt",
                )
            )
    instance_images = sum(c.images for c in instance.values())
    class_images = sum(c.images for c in report.concepts.values() if c.role == "class")
    if class_images and class_images < instance_images:
        report.warnings.append(
            Issue(
                "few-class-images",
                f"{class_images} class images for {instance_images} instance images; prior preservation usually "
                "wants at least as many (often 100-200); the training engine can generate the rest",
            )
        )
    return report
