"""What every captioner offers: a name, `caption(images)`, and a cancellable batch with progress."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

ProgressCallback = Callable[[int, int], None]  # (done, total)


class CaptioningCancelled(Exception):
    """Raised by `caption_batch` when its cancel event is set; carries the captions made so far."""

    def __init__(self, captions: list[str]) -> None:
        super().__init__(f"captioning cancelled after {len(captions)} image(s)")
        self.captions = captions


def _as_image(image: Image.Image | Path) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    with Image.open(image) as opened:
        return opened.convert("RGB")


class Captioner(ABC):
    name: str = "captioner"
    batch_size: int = 8

    @abstractmethod
    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, in order."""

    def for_role(self, role: str) -> Captioner:
        """The captioner to use for "instance" or "class" images; most caption both the same way."""
        return self

    def caption_batch(
        self,
        images: Sequence[Image.Image | Path],
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[str]:
        """Caption in chunks of `batch_size`, reporting progress and checking `cancel` between chunks.

        Paths are opened one chunk at a time, so a large dataset is never all in memory.
        """
        captions: list[str] = []
        total = len(images)
        for start in range(0, total, self.batch_size):
            if cancel is not None and cancel.is_set():
                raise CaptioningCancelled(captions)
            chunk = [_as_image(image) for image in images[start : start + self.batch_size]]
            captions += self.caption(chunk)
            if on_progress:
                on_progress(len(captions), total)
        return captions
