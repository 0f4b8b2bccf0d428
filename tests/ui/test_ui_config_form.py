"""The training form is generated from the config dataclasses and reads back through the strict loader."""

from __future__ import annotations

import pytest

from studio.train.config import list_presets, resolve_config
from studio.ui.config_form import IMPORTANT, config_from_values, field_specs, values_from_config


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_survives_a_round_trip_through_the_form(preset):
    config = resolve_config(preset=preset)
    values = values_from_config(config)
    assert config_from_values(config.method, values).to_dict() == config.to_dict()


def test_every_field_has_help_and_important_fields_exist():
    for section, names in IMPORTANT.items():
        specs = {spec.name: spec for spec in field_specs(section)}
        assert set(names) <= set(specs), section
        assert all(spec.help for spec in specs.values()), section


def test_form_values_are_converted_to_the_field_types():
    values = values_from_config(resolve_config(preset="lora-pocket"))
    values["training.steps"] = 40.0  # gr.Number can give a float for a whole number
    values["training.sample_prompts"] = "a zq on a black background\n\n  a zq on a white background  "
    config = config_from_values("lora", values)
    assert config.training.steps == 40 and isinstance(config.training.steps, int)
    assert config.training.sample_prompts == ["a zq on a black background", "a zq on a white background"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("training.steps", None, "Steps is empty"),
        ("training.steps", 2.5, "whole number"),
        ("training.learning_rate", -1.0, "learning_rate must be a positive number"),
        ("lora.rank", 0, "rank must be a positive number"),
    ],
)
def test_bad_values_are_refused_with_a_sentence(key, value, message):
    values = values_from_config(resolve_config(preset="lora-pocket"))
    values[key] = value
    with pytest.raises(ValueError, match=message):
        config_from_values("lora", values)


def test_only_the_chosen_methods_section_is_read():
    values = values_from_config(resolve_config(preset="lora-pocket"))
    values["dreambooth.trigger"] = "two words"  # invalid for DreamBooth, ignored for LoRA
    assert config_from_values("lora", values).method == "lora"
    with pytest.raises(ValueError, match="choose a method"):
        config_from_values("hypernetwork", values)


def test_building_the_studio_loads_no_torch() -> None:
    """An idle studio (a free CPU Space) should not hold torch's ~180 MB before anyone generates or trains:
    building every tab and the CLI parser must not import it."""
    import subprocess
    import sys

    code = (
        "import sys; from studio.cli import build_parser; build_parser();"
        "from studio.ui.app import build_app; build_app(); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr[-2000:]
