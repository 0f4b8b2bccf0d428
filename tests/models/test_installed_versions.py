"""The installed libraries agree with each other: transformers refuses text-encoder adapters (LoRA on CLIP, every
SDXL LoRA that trains the text encoders) when peft is older than it asks for, and pip does not see that rule."""

from __future__ import annotations

import importlib.metadata

from packaging.version import Version


def test_peft_is_new_enough_for_transformers_adapter_loading():
    from transformers.integrations import peft as transformers_peft

    needed = Version(transformers_peft.MIN_PEFT_VERSION)
    installed = Version(importlib.metadata.version("peft"))
    assert installed >= needed, (
        f"transformers {importlib.metadata.version('transformers')} needs peft >= {needed} for text-encoder "
        f"adapters, peft {installed} is installed: cap transformers in pyproject.toml below the release that raised it"
    )
