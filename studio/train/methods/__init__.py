"""Training methods, one folder each with the same files: config.py (dataclass + help + validation), method.py."""

from __future__ import annotations

from studio.train.methods.base import TrainingMethod

METHOD_NAMES = ("lora", "dreambooth", "textual_inversion", "finetune")


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
    raise ValueError(f"method must be one of {', '.join(METHOD_NAMES)}, got {name!r}")


__all__ = ["METHOD_NAMES", "TrainingMethod", "method_class"]
