"""The generation engine on a tiny SD1 model: reproducible, cached, metadata in every PNG."""

import numpy as np
import pytest

from studio.cli import main
from studio.generate import GenerationEngine, GenerationSettings, PipelineCache, read_params, save_images
from studio.models import load_pipeline


@pytest.fixture()
def engine():
    return GenerationEngine(device="cpu")


def _settings(model, **overrides):
    values = dict(prompt="a red circle on a black background", steps=3, count=2, seed=5, model=str(model))
    return GenerationSettings(**(values | overrides))


def test_same_seed_same_pixels_and_image_i_uses_seed_plus_i(engine, sd1_dir):
    first = engine.generate(_settings(sd1_dir))
    again = engine.generate(_settings(sd1_dir))
    assert [r.params["seed"] for r in first] == [5, 6]
    for a, b in zip(first, again):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    # image 1 of a batch equals image 0 of a run that starts at its seed
    alone = engine.generate(_settings(sd1_dir, seed=6, count=1))[0]
    assert np.abs(np.asarray(alone.image, dtype=int) - np.asarray(first[1].image, dtype=int)).max() <= 1
    assert not np.array_equal(np.asarray(first[0].image), np.asarray(first[1].image))


def test_model_is_loaded_once_and_samplers_switch_without_reloading(engine, sd1_dir):
    for sampler in ("default", "euler_a", "ddim", "dpmpp_2m_karras", "unipc"):
        result = engine.generate(_settings(sd1_dir, sampler=sampler, count=1))
        assert result[0].params["sampler"] == sampler
    assert engine.cache.loads == 1


def test_cache_releases_the_old_model_when_the_model_changes(sd1_dir, sdxl_dir):
    cache = PipelineCache()
    first = cache.get(str(sd1_dir), device="cpu")
    assert cache.get(str(sd1_dir), device="cpu") is first
    second = cache.get(str(sdxl_dir), device="cpu")
    assert second is not first and cache.loads == 2


def test_size_must_fit_the_model(engine, sd1_dir):
    with pytest.raises(ValueError, match="multiples of"):
        engine.generate(_settings(sd1_dir, width=36, height=32, count=1))
    result = engine.generate(_settings(sd1_dir, width=64, height=32, count=1))
    assert result[0].image.size == (64, 32)


def test_progress_reaches_the_total(engine, sd1_dir):
    seen = []
    # 5 images go through the pipeline in two batches (4 + 1): 2 x 4 steps
    engine.generate(_settings(sd1_dir, steps=4, count=5), on_step=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 8) for i in range(1, 9)]


def test_saved_pngs_reproduce_their_image(engine, sd1_dir, tmp_path):
    results = engine.generate(_settings(sd1_dir, count=1, negative_prompt="blurry"))
    path = save_images(results, tmp_path)[0]
    params = read_params(path)
    assert params["negative_prompt"] == "blurry" and params["seed"] == 5
    settings = GenerationSettings.from_dict({k: params[k] for k in GenerationSettings.__dataclass_fields__})
    again = engine.generate(settings)[0]
    assert np.array_equal(np.asarray(again.image), np.asarray(results[0].image))


def test_cli_generate_writes_pngs(sd1_dir, tmp_path, capsys):
    code = main(
        [
            "generate",
            "-p",
            "a blue square",
            "--model",
            str(sd1_dir),
            "--steps",
            "2",
            "--count",
            "2",
            "--out",
            str(tmp_path),
            "--sampler",
            "euler_a",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    written = sorted(tmp_path.glob("*.png"))
    assert len(written) == 2
    assert read_params(written[0])["sampler"] == "euler_a"
    assert str(written[0]) in capsys.readouterr().out


def test_cli_generate_bad_model_is_one_line(tmp_path, capsys):
    code = main(["generate", "-p", "x", "--model", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("studio generate:") and "\n" not in err


def test_loaded_pipeline_has_the_detected_family(sd1_dir):
    assert load_pipeline(str(sd1_dir), device="cpu").family.value == "sd1"


def test_cli_generate_from_a_single_file_with_its_config(sd1_dir, tmp_path):
    from studio.models import save_single_file

    checkpoint = save_single_file(load_pipeline(str(sd1_dir), device="cpu").pipe, tmp_path / "tiny.safetensors")
    out = tmp_path / "out"
    args = ["generate", "-p", "a red circle", "--model", str(checkpoint), "--steps", "2", "--out", str(out)]
    assert main(args + ["--config", str(sd1_dir), "--device", "cpu"]) == 0
    assert len(list(out.glob("*.png"))) == 1
