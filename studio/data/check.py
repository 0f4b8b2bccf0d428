"""Check a dataset on disk: files intact, captions in sync in both conventions, caption and trigger rules, balance.

This is what `studio dataset check` prints and what the Dataset tab shows before training. It only reads.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from studio.data.caption_text import TokenCounter, caption_issues
from studio.data.concepts import Balance, balance
from studio.data.dataset import METADATA, Dataset, read_metadata_captions, read_sidecar_captions
from studio.data.issues import Issue
from studio.data.trigger import trigger_issues


@dataclass
class CheckReport:
    dataset: str
    images: int
    trigger: str | None
    problems: dict[str, list[Issue]] = field(default_factory=dict)  # file -> findings
    balance: Balance = field(default_factory=Balance)
    rejected_at_import: int = 0

    def add(self, file: str, issue: Issue) -> None:
        self.problems.setdefault(file, []).append(issue)

    @property
    def ok(self) -> bool:
        """Nothing that would train on wrong or missing data (warnings about style are still listed)."""
        blocking = {
            "file-missing",
            "file-changed",
            "caption-out-of-sync",
            "trigger-missing",
            "trigger-in-class-caption",
        }
        return not any(issue.code in blocking for issues in self.problems.values() for issue in issues)

    def counts(self) -> dict[str, int]:
        return dict(Counter(issue.code for issues in self.problems.values() for issue in issues))

    def summary(self) -> str:
        counts = ", ".join(f"{n} {code}" for code, n in sorted(self.counts().items())) or "no problems"
        return f"{self.images} images; {counts}"

    def as_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "ok": self.ok,
            "summary": self.summary(),
            "images": self.images,
            "trigger": self.trigger,
            "counts": self.counts(),
            "problems": {file: [i.as_dict() for i in issues] for file, issues in self.problems.items()},
            "balance": self.balance.as_dict(),
            "rejected_at_import": self.rejected_at_import,
        }


OUTSIDE_MANIFEST = "not in the manifest (left by an import that failed?): it is not trained on; delete it"


def files_outside_manifest(dataset: Dataset) -> list[str]:
    """Files in the images folder that no item owns: neither an image, its caption, nor metadata.jsonl."""
    if not dataset.images_dir.is_dir():
        return []
    owned = {METADATA} | {item.file for item in dataset.items} | {f"{item.stem}.txt" for item in dataset.items}
    return sorted(path.name for path in dataset.images_dir.iterdir() if path.name not in owned)


def check_dataset(dataset: Dataset, counter: TokenCounter | None = None) -> CheckReport:
    report = CheckReport(dataset.name, len(dataset.items), dataset.trigger, rejected_at_import=len(dataset.rejected))
    sidecars = read_sidecar_captions(dataset.images_dir)
    try:
        metadata = read_metadata_captions(dataset.images_dir)
    except FileNotFoundError:
        metadata = {}
    for item in dataset.items:
        path = dataset.images_dir / item.file
        if not path.is_file():
            report.add(item.file, Issue("file-missing", "the image file is gone"))
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() != item.sha256:
            report.add(item.file, Issue("file-changed", "the image changed on disk since import; re-import it"))
        if sidecars.get(item.file) != item.caption or metadata.get(item.file) != item.caption:
            report.add(
                item.file,
                Issue("caption-out-of-sync", "the .txt or metadata.jsonl caption differs from the manifest; re-save"),
            )
        for issue in caption_issues(item.caption, counter):
            report.add(item.file, issue)
    for file, issue in trigger_issues(dataset.items, dataset.trigger).items():
        report.add(file, issue)
    for file in files_outside_manifest(dataset):
        report.add(file, Issue("file-outside-manifest", OUTSIDE_MANIFEST))
    report.balance = balance(dataset.items)
    return report
