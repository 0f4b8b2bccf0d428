"""Full fine-tune: the whole UNet learns from the dataset's captions; EMA follows, resumes exactly, and exports."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import RESOLUTION, assert_same_weights, resumed_and_reference_weights, tiny_method_config

from studio import runs
from studio.paths import POCKET_MODEL_DIR
from studio.train.loop import prepare_trainer
from studio.train.methods.finetune.config import FinetuneConfig
from studio.train.start import create_run, run_training

RESUME = {
    "steps": 6,
    "batch_size": 2,
    "gradient_accumulation": 2,
    "learning_rate": 1e-3,
    "lr_scheduler": "cosine",
    "warmup_steps": 2,
    "offset_noise": 0.1,
    "caption_dropout": 0.3,
    "checkpoint_every": 2,
    "use_ema": True,
    "ema_decay": 0.9,
}


def finetune_config(sd1_dir, settings: dict):
    return tiny_method_config(sd1_dir, "finetune", settings)


def test_unet_learns_and_ema_lags_behind_it(tmp_path, sd1_dir, shapes_folder) -> None:

    run_dir = create_run(
        finetune_config(sd1_dir, {"steps": 4, "use_ema": True, "ema_decay": 0.9, "learning_rate": 1e-3}),
        shapes_folder,
        root=tmp_path,
    )
    trainer = prepare_trainer(run_dir)
    base = {n: p.detach().clone() for n, p in trainer.pipe.unet.named_parameters()}
    text_before = {n: p.detach().clone() for n, p in trainer.pipe.text_encoder.named_parameters()}
    from studio.train.loop import train

    assert train(trainer) == "finished"
    live = dict(trainer.pipe.unet.named_parameters())
    assert any(not torch.equal(base[n], live[n]) for n in base), "the UNet did not change"
    assert all(torch.equal(text_before[n], p) for n, p in trainer.pipe.text_encoder.named_parameters())
    # the average sits between the base and the live weights: it moved, but less than the weights did
    name = next(n for n in base if base[n].dim() == 4)
    shadow = trainer.method.ema.shadow_params[list(live).index(name)]
    moved_live = (live[name] - base[name]).norm()
    moved_ema = (shadow - base[name]).norm()
    assert 0 < moved_ema < moved_live

    # samples and exports draw with the average; training continues on the live weights afterwards
    with trainer.method.inference_weights(trainer.pipe):
        assert torch.equal(dict(trainer.pipe.unet.named_parameters())[name], shadow)
    assert torch.equal(dict(trainer.pipe.unet.named_parameters())[name], live[name])


def test_cancel_then_resume_with_ema_is_bit_identical(tmp_path, sd1_dir, shapes_folder) -> None:
    final, reference = resumed_and_reference_weights(finetune_config(sd1_dir, RESUME), shapes_folder, tmp_path)
    assert any(k.startswith("ema.") for k in final) and "ema_optimization_step" in final
    assert_same_weights(final, reference)


def test_export_is_the_ema_pipeline_and_a_single_file(tmp_path, sd1_dir, shapes_folder) -> None:
    from diffusers import StableDiffusionPipeline

    from studio.models import load_pipeline
    from studio.train.export import render

    settings = {"steps": 3, "use_ema": True, "ema_decay": 0.5, "export_single_file": True, "learning_rate": 1e-3}
    run_dir = create_run(finetune_config(sd1_dir, settings), shapes_folder, root=tmp_path)
    assert run_training(run_dir) == "finished"
    state = runs.replay(run_dir)
    assert not state.warnings, state.warnings
    assert [e["path"] for e in state.exports] == ["outputs/pipeline", "outputs/model.safetensors"]
    assert state.exports[1]["max_difference"] < 1e-3

    trainer = prepare_trainer(run_dir)
    trainer.pipe.unet.eval()
    prompt = "a red circle on a white background"
    with trainer.method.inference_weights(trainer.pipe):
        ema_image = render(trainer.pipe, prompt, RESOLUTION)
    live_image = render(trainer.pipe, prompt, RESOLUTION)
    reloaded = StableDiffusionPipeline.from_pretrained(run_dir / "outputs" / "pipeline")
    np.testing.assert_allclose(render(reloaded, prompt, RESOLUTION), ema_image, atol=1e-5)
    assert np.abs(live_image - ema_image).max() > 1e-4, "the export should hold the average, not the live weights"
    single_file = load_pipeline(
        str(run_dir / "outputs" / "model.safetensors"), config_folder=run_dir / "outputs" / "pipeline"
    ).pipe
    np.testing.assert_allclose(render(single_file, prompt, RESOLUTION), ema_image, atol=1e-4)


@pytest.mark.parametrize(("settings", "field"), [({"ema_decay": 1.0}, "ema_decay"), ({"ema_power": 0}, "ema_power")])
def test_bad_config_is_refused_naming_the_field(sd1_dir, settings, field) -> None:
    with pytest.raises(ValueError, match=field):
        finetune_config(sd1_dir, settings)


def test_every_field_has_a_default_and_help() -> None:
    for f in dataclasses.fields(FinetuneConfig):
        assert f.metadata.get("help"), f"FinetuneConfig.{f.name} has no help"


@pytest.mark.slow
@pytest.mark.skipif(not (POCKET_MODEL_DIR / "model_index.json").is_file(), reason="the pocket model is not built yet")
def test_finetune_style_preset_teaches_the_pocket_model_a_style(tmp_path) -> None:
    """96 captioned pink-on-black images; afterwards "a <shape> in zq style" draws that shape in the new palette."""
    from studio.pocket.datasets import STYLE_BACKGROUND, STYLE_COLOUR, write_style_folder
    from studio.pocket.evaluator import judge
    from studio.train.config import resolve_config

    overrides = {"sample_every": "0", "checkpoint_every": "0", "sample_prompts": "[a circle in zq style]"}
    config = resolve_config("finetune-style-pocket", overrides=overrides)
    folder = write_style_folder(tmp_path / "style", "zq", side=config.training.resolution)
    run_dir = create_run(config, folder, root=tmp_path / "runs")
    assert run_training(run_dir, export=False) == "finished"
    trainer = prepare_trainer(run_dir)
    trainer.pipe.unet.eval()
    trainer.pipe.set_progress_bar_config(disable=True)
    styled = right_shape = 0
    shapes = ["circle", "square", "triangle", "diamond"]
    with torch.no_grad(), trainer.method.inference_weights(trainer.pipe):
        for seed, shape in enumerate(shapes * 2):
            image = trainer.pipe(
                f"a {shape} in zq style",
                num_inference_steps=20,
                height=64,
                width=64,
                generator=torch.Generator("cpu").manual_seed(seed),
            ).images[0]
            verdict = judge(image)
            styled += (verdict.color, verdict.background) == (STYLE_COLOUR, STYLE_BACKGROUND)
            right_shape += verdict.shape == shape
    print(f"finetune-style-pocket: {styled}/8 pink on black, {right_shape}/8 the prompted shape")
    assert styled >= 6, f"only {styled}/8 samples are pink on black"
    assert right_shape >= 5, f"only {right_shape}/8 samples kept the prompted shape"
