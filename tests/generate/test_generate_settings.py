import pytest
from PIL import Image

from studio.generate.engine import GenerationSettings
from studio.generate.png_metadata import read_params, save_png
from studio.generate.samplers import SAMPLERS, make_scheduler


def test_settings_validate_with_specific_messages():
    assert GenerationSettings(prompt="a red circle").steps == 25
    with pytest.raises(ValueError, match="prompt is empty"):
        GenerationSettings(prompt="   ")
    with pytest.raises(ValueError, match="steps"):
        GenerationSettings(prompt="x", steps=0)
    with pytest.raises(ValueError, match="count"):
        GenerationSettings(prompt="x", count=100)
    with pytest.raises(ValueError, match="unknown sampler"):
        GenerationSettings(prompt="x", sampler="fastest")
    with pytest.raises(ValueError, match="unknown generation setting.*stpes"):
        GenerationSettings.from_dict({"prompt": "x", "stpes": 3})


def test_png_round_trips_its_parameters(tmp_path):
    params = {
        "prompt": "a red circle on a white background",
        "seed": 7,
        "steps": 25,
        "guidance": 6.0,
        "sampler": "dpmpp_2m",
        "width": 64,
        "height": 64,
        "model": "pocket",
        "negative_prompt": "blur",
    }
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "x.png", params)
    assert read_params(path) == params
    text = Image.open(path).text["parameters"]
    assert text.startswith("a red circle on a white background\nNegative prompt: blur\n")
    assert "Seed: 7" in text and "CFG scale: 6.0" in text


def test_foreign_png_has_no_parameters(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    assert read_params(tmp_path / "plain.png") is None


def test_every_sampler_keeps_the_models_noise_schedule():
    from diffusers import DDPMScheduler

    base = DDPMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type="v_prediction"
    )
    for name in SAMPLERS:
        scheduler = make_scheduler(name, base)
        assert scheduler.config.prediction_type == "v_prediction", name
        assert scheduler.config.beta_end == 0.012, name
    assert type(make_scheduler("euler_a", base)).__name__ == "EulerAncestralDiscreteScheduler"
    assert type(make_scheduler("default", base)) is DDPMScheduler
    assert make_scheduler("dpmpp_2m_karras", base).config.use_karras_sigmas is True
    with pytest.raises(ValueError, match="unknown sampler"):
        make_scheduler("nope", base)
