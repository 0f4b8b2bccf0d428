"""INT8 inference on the pocket model: really int8, close to float32, cached apart, clear errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from studio.generate import GenerationEngine, GenerationSettings
from studio.generate.quantize import INSTALL_HINT, count_linear_layers, denoising_parts, quantize_pipeline, weight_bytes
from studio.pocket.evaluator import judge

PROMPTS = [
    "a red circle on a white background",
    "a yellow triangle on a black background",
    "a blue square on a gray background",
    "a green star on a white background",
]


@pytest.fixture(scope="module")
def engine():
    pytest.importorskip("torchao")
    return GenerationEngine(device="cpu")


def _images(engine, quantize: str) -> list[np.ndarray]:
    images = []
    for prompt in PROMPTS:
        settings = GenerationSettings(prompt=prompt, steps=8, count=1, seed=3, quantize=quantize)
        images += [np.asarray(r.image, dtype=np.float32) for r in engine.generate(settings)]
    return images


def test_int8_quantizes_every_linear_layer_and_stays_close_to_float(engine) -> None:
    float_images = _images(engine, "none")
    float_pipe = engine.load("pocket").pipe
    float_bytes = {name: weight_bytes(part) for name, part in denoising_parts(float_pipe).items()}
    assert count_linear_layers(float_pipe.unet)[0] == 0

    int8_images = _images(engine, "int8")
    int8_pipe = engine.load("pocket", "int8").pipe
    assert int8_pipe is not float_pipe  # fp32 and int8 are different cache entries
    for name, part in denoising_parts(int8_pipe).items():
        quantized, linears = count_linear_layers(part)
        assert linears > 0 and quantized == linears, name
        assert weight_bytes(part) < float_bytes[name], name  # linear weights take 1 byte instead of 4
    # the same seeds give nearly the same pixels (measured 2026-11-23: mean |diff| 0.27 of 255) ...
    distance = np.mean([np.abs(a - b).mean() for a, b in zip(float_images, int8_images)])
    assert 0 < distance < 2.0
    # ... and the evaluator reads the same shape, colour and background in every image
    for a, b in zip(float_images, int8_images):
        first, second = judge_array(a), judge_array(b)
        assert (first.shape, first.color, first.background) == (second.shape, second.color, second.background)


def judge_array(pixels: np.ndarray):
    from PIL import Image

    return judge(Image.fromarray(pixels.astype(np.uint8)))


def test_switching_precision_reloads_and_params_record_it(engine) -> None:
    loads = engine.cache.loads
    result = engine.generate(GenerationSettings(prompt=PROMPTS[0], steps=2, quantize="int8"))[0]
    assert result.params["quantize"] == "int8"
    back = engine.generate(GenerationSettings(prompt=PROMPTS[0], steps=2))[0]
    assert back.params["quantize"] == "none"
    assert engine.cache.loads >= loads + 1
    assert count_linear_layers(engine.load("pocket").pipe.unet)[0] == 0  # the float pipeline is float again


def test_bad_combinations_and_values_are_refused() -> None:
    with pytest.raises(ValueError, match="fuse cannot be combined with int8"):
        GenerationSettings(prompt="x", quantize="int8", fuse=True)
    with pytest.raises(ValueError, match="quantize must be one of"):
        GenerationSettings(prompt="x", quantize="int4")


def test_missing_torchao_gives_the_install_hint(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)  # import of it now raises ImportError
    with pytest.raises(ValueError, match="torchao") as error:
        quantize_pipeline(object(), "int8")
    assert str(error.value) == INSTALL_HINT
