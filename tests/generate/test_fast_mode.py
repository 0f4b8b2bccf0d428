"""Fast mode: the shipped LCM-LoRA, the LCM sampler, 4 steps, guidance 1 — from settings, the form and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from studio.cli import main
from studio.generate import GenerationEngine, GenerationSettings, read_params
from studio.generate.engine import fast_form_values as form_values
from studio.generate.fast import FAST_GUIDANCE, FAST_STEPS, pocket_lcm_lora
from studio.paths import POCKET_LCM_LORA_DIR


def test_fast_settings_add_the_shipped_lcm_lora_without_recording_its_path() -> None:
    settings = GenerationSettings(prompt="a red circle on a white background", fast=True)
    assert settings.loras == []  # the PNG keeps fast=True, not an install path
    (spec,) = settings.lora_specs
    assert spec.path == str(POCKET_LCM_LORA_DIR) and spec.is_lcm
    assert (POCKET_LCM_LORA_DIR / "pytorch_lora_weights.safetensors").stat().st_size < 600_000


def test_fast_mode_is_refused_for_models_without_a_shipped_lcm_lora() -> None:
    with pytest.raises(ValueError, match="pocket model only"):
        GenerationSettings(prompt="a cat", model="runwayml/stable-diffusion-v1-5", fast=True)


def test_form_values_switch_to_lcm_and_back_to_the_defaults() -> None:
    assert form_values(True) == {"sampler": "lcm", "steps": FAST_STEPS, "guidance": FAST_GUIDANCE}
    defaults = GenerationSettings(prompt="-")
    assert form_values(False) == {"sampler": "default", "steps": defaults.steps, "guidance": defaults.guidance}


def test_fast_generation_is_the_lcm_lora_sampled_with_lcm() -> None:
    engine = GenerationEngine(device="cpu")
    common = dict(prompt="a blue square on a gray background", seed=4, **form_values(True))
    fast = engine.generate(GenerationSettings(fast=True, **common))[0]
    by_hand = engine.generate(GenerationSettings(loras=[pocket_lcm_lora().to_dict()], **common))[0]
    plain = engine.generate(GenerationSettings(**common))[0]
    assert fast.params["sampler"] == "lcm" and fast.params["fast"] is True
    assert np.array_equal(np.asarray(fast.image), np.asarray(by_hand.image))
    assert not np.array_equal(np.asarray(fast.image), np.asarray(plain.image))  # the LoRA really is applied


def test_cli_fast_and_int8_write_their_settings_into_the_png(tmp_path) -> None:
    pytest.importorskip("torchao")
    code = main(["generate", "-p", "a red circle on a white background", "--fast", "--int8", "--out", str(tmp_path)])
    assert code == 0
    (png,) = tmp_path.glob("*.png")
    params = read_params(png)
    assert (params["fast"], params["quantize"], params["sampler"]) == (True, "int8", "lcm")
    assert (params["steps"], params["guidance"]) == (FAST_STEPS, FAST_GUIDANCE)
    # an explicit choice wins over what fast mode implies
    assert main(["generate", "-p", "a red circle on a white background", "--fast", "--steps", "2", "--out",
                 str(tmp_path / "two")]) == 0  # fmt: skip
    assert read_params(next((tmp_path / "two").glob("*.png")))["steps"] == 2
