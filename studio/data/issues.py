"""The one shape every finding of the dataset engine takes: a stable code and a sentence for people.

Codes are what tests, the UI and scripts match on; messages are what a person reads. A finding is a
*rejection* when it stops a file from entering the dataset, and a *warning* when the file is kept.

Rejections: empty-file, file-too-large, not-an-image, unsupported-file, unsupported-mode, corrupt, truncated,
decompression-bomb, too-small, duplicate, zip-path-escape, zip-link, zip-encrypted, zip-bomb, zip-corrupt,
zip-too-many-entries,
unreadable, bad-folder-name, link-outside.
Warnings: animated, smaller-than-resolution, extreme-aspect, near-duplicate, extension-mismatch, bad-exif,
colour-profile, caption-empty, caption-not-utf8, caption-too-long, caption-conflict, caption-missing,
caption-file-too-large, trigger-missing, trigger-in-class-caption; about an upload: metadata-line, metadata-file, caption-orphan;
about a dataset: concept-imbalance, few-class-images, file-missing, file-changed, caption-out-of-sync.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict) -> Issue:
        return cls(str(data["code"]), str(data["message"]))


@dataclass(frozen=True)
class RejectedFile:
    """A file of an upload that did not enter the dataset, and why."""

    source: str  # as the user would recognise it, e.g. "photos.zip:cats/x.png"
    issue: Issue

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, **self.issue.as_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> RejectedFile:
        return cls(str(data["source"]), Issue.from_dict(data))
