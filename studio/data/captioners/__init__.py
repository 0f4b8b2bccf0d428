"""Captioners: the pocket model's (offline default), BLIP / Florence-2 via transformers, and a template.

`load_captioner(spec)` turns what a user typed into one: "pocket", "template", "blip", "florence2", or a hub
id / local folder of a BLIP or Florence-2 model.
"""

from __future__ import annotations

from studio.data.captioners.base import Captioner, CaptioningCancelled

CAPTIONER_NAMES = ("pocket", "template", "blip", "florence2")


def load_captioner(
    spec: str = "pocket", trigger: str = "", class_word: str = "", device: str = "cpu", **options
) -> Captioner:
    """A ready captioner. Raises ModelLoadError (a ValueError) with one sentence when it cannot be loaded."""
    if spec == "pocket":
        from studio.data.captioners.pocket import PocketCaptioner

        return PocketCaptioner.load(**options)
    if spec == "template":
        from studio.data.captioners.template import TemplateCaptioner

        return TemplateCaptioner(trigger=trigger, class_word=class_word, **options)
    from studio.data.captioners.transformers_vlm import TransformersCaptioner

    return TransformersCaptioner(spec, device=device, **options)


__all__ = ["CAPTIONER_NAMES", "Captioner", "CaptioningCancelled", "load_captioner"]
