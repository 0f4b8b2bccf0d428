"""Training methods (LoRA, DreamBooth, Textual Inversion, full fine-tune, SVDiff), one folder each with the same
files: __init__.py (registers the method: registry.py), config.py (dataclass + help + validation), method.py (what
learns and what is exported, for the shared loop). Adding a method is adding its folder and a preset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from studio.train.methods.registry import (
    MethodFacts,
    MethodSpec,
    SubjectWords,
    facts,
    get,
    method_names,
    methods,
    register,
    unregister,
)

if TYPE_CHECKING:  # base.py imports torch; the UI builds forms from the configs without it
    from studio.train.methods.base import TrainingMethod


def config_class(name: str) -> type:
    """A method's config dataclass, imported without torch (the UI's forms and the config loader need only this)."""
    return get(name).config_class


def method_class(name: str) -> type[TrainingMethod]:
    """A method's class for the loop (imports its method.py, and torch)."""
    return get(name).load_method_class()


__all__ = [
    "MethodFacts",
    "MethodSpec",
    "SubjectWords",
    "config_class",
    "facts",
    "get",
    "method_class",
    "method_names",
    "methods",
    "register",
    "unregister",
]
