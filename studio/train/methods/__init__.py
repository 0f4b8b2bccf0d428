"""Training methods (LoRA, DreamBooth, Textual Inversion, full fine-tune, SVDiff), one folder each with the same files: config.py (dataclass + help + validation), method.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # base.py imports torch; the UI builds forms from the configs without it
    from studio.train.methods.base import TrainingMethod

METHOD_NAMES = ("lora", "dreambooth", "textual_inversion", "finetune", "svdiff")


def config_class(name: str) -> type:
    """A method's config dataclass, imported without torch (the UI's forms and the config loader need only this)."""
    if name == "lora":
        from studio.train.methods.lora.config import LoraConfig

        return LoraConfig
    if name == "dreambooth":
        from studio.train.methods.dreambooth.config import DreamBoothConfig

        return DreamBoothConfig
    if name == "textual_inversion":
        from studio.train.methods.textual_inversion.config import TextualInversionConfig

        return TextualInversionConfig
    if name == "finetune":
        from studio.train.methods.finetune.config import FinetuneConfig

        return FinetuneConfig
    if name == "svdiff":
        from studio.train.methods.svdiff.config import SvdiffConfig

        return SvdiffConfig
    raise ValueError(f"method must be one of {', '.join(METHOD_NAMES)}, got {name!r}")


def method_class(name: str) -> type[TrainingMethod]:
    if name == "lora":
        from studio.train.methods.lora.method import LoraMethod

        return LoraMethod
    if name == "dreambooth":
        from studio.train.methods.dreambooth.method import DreamBoothMethod

        return DreamBoothMethod
    if name == "textual_inversion":
        from studio.train.methods.textual_inversion.method import TextualInversionMethod

        return TextualInversionMethod
    if name == "finetune":
        from studio.train.methods.finetune.method import FinetuneMethod

        return FinetuneMethod
    if name == "svdiff":
        from studio.train.methods.svdiff.method import SvdiffMethod

        return SvdiffMethod
    raise ValueError(f"method must be one of {', '.join(METHOD_NAMES)}, got {name!r}")


__all__ = ["METHOD_NAMES", "config_class", "method_class"]
