"""SDXL training on a tiny SDXL built from configs: pooled text + size conditioning, both text encoders' LoRA,
exports that reload in diffusers (diffusers and kohya formats) to the same output."""

from __future__ import annotations

import pytest
import torch
from conftest import RESOLUTION, tiny_config

from studio import runs
from studio.train.loop import prepare_trainer, train
from studio.train.start import create_run, run_training


def test_lora_on_sdxl_trains_both_text_encoders_and_exports_reload(tmp_path, sdxl_dir, shapes_folder) -> None:
    from safetensors.torch import load_file

    config = tiny_config(
        sdxl_dir, steps=2, learning_rate=1e-2, train_text_encoder="true", sample_prompts="[a red circle]"
    )
    run_dir = create_run(config, shapes_folder, root=tmp_path)
    assert run_training(run_dir) == "finished"
    state = runs.replay(run_dir)
    assert state.status == "finished" and not state.warnings, state.warnings
    assert {e["path"] for e in state.exports} == {
        "outputs/lora-diffusers/pytorch_lora_weights.safetensors",
        "outputs/lora-kohya.safetensors",
    }
    assert all(e["max_difference"] < 1e-3 for e in state.exports), state.exports
    kohya = load_file(str(run_dir / "outputs" / "lora-kohya.safetensors"))
    prefixes = {key.split("_")[0] + "_" + key.split("_")[1] for key in kohya}
    assert prefixes == {"lora_unet", "lora_te1", "lora_te2"}


def test_sdxl_step_uses_pooled_text_and_size_conditioning(tmp_path, sdxl_dir, shapes_folder) -> None:
    from studio.train import conditioning

    run_dir = create_run(tiny_config(sdxl_dir, steps=1), shapes_folder, root=tmp_path)
    trainer = prepare_trainer(run_dir)
    condition = conditioning.encode_prompts(trainer.pipe, ["a red circle", "a blue square"], "cpu")
    assert condition.pooled is not None and condition.pooled.shape[0] == 2
    # the pooled text reaches the UNet: changing it changes the prediction
    noisy = torch.randn(2, 4, RESOLUTION // 8, RESOLUTION // 8)
    timesteps = torch.tensor([10, 500])
    with torch.no_grad():
        first = conditioning.predict(trainer.pipe, noisy, timesteps, condition)
        condition.pooled = condition.pooled + 1
        second = conditioning.predict(trainer.pipe, noisy, timesteps, condition)
    assert not torch.allclose(first, second)
    assert train(trainer) == "finished"


@pytest.mark.parametrize("method", ["dreambooth", "finetune"])
def test_full_unet_methods_refuse_text_encoder_training_on_sdxl(tmp_path, sdxl_dir, shapes_folder, method) -> None:
    from studio.train.config import config_from_dict

    training = tiny_config(sdxl_dir, steps=1).to_dict()["training"]
    own = {"dreambooth": {"with_prior_preservation": False, "train_text_encoder": True}}
    config = config_from_dict(
        {"method": method, "training": training, method: own.get(method, {"train_text_encoder": True})}
    )
    run_dir = create_run(config, shapes_folder, root=tmp_path)
    with pytest.raises(ValueError, match="not supported on SDXL"):
        prepare_trainer(run_dir)
