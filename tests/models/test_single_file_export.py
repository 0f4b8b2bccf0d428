"""Single-file (LDM layout) export, and loading single files back."""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint
from safetensors import safe_open
from tiny_pipelines import generate

from studio.models import Family, ModelLoadError, detect_family, ldm_state_dict, load_pipeline, save_single_file


def _config_only(folder: Path, dest: Path) -> Path:
    """A copy of a diffusers folder without weights, like the config snapshot diffusers fetches.

    With weights present, diffusers would quietly load any component missing from the single file
    from this folder instead, and the round trip would prove nothing.
    """
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return dest


@pytest.fixture(scope="module")
def sd1_pipe(sd1_dir):
    return load_pipeline(str(sd1_dir), device="cpu").pipe


@pytest.fixture(scope="module")
def sd1_file(sd1_pipe, tmp_path_factory) -> Path:
    return save_single_file(sd1_pipe, tmp_path_factory.mktemp("export") / "tiny-sd1.safetensors")


def test_layout(sd1_file):
    with safe_open(str(sd1_file), framework="pt") as f:
        keys = set(f.keys())
        attn_q = f.get_tensor("first_stage_model.encoder.mid.attn_1.q.weight")
    assert "model.diffusion_model.input_blocks.0.0.weight" in keys
    assert "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight" in keys
    assert "model.diffusion_model.output_blocks.0.1.proj_in.weight" in keys
    assert "first_stage_model.decoder.up.0.block.0.conv1.weight" in keys
    assert "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight" in keys
    assert attn_q.ndim == 4 and attn_q.shape[2:] == (1, 1)  # 1x1 conv, as in the original VAE
    assert all(k.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")) for k in keys)


def test_export_is_the_exact_inverse_of_diffusers_loader(sd1_pipe):
    ldm = ldm_state_dict(sd1_pipe)
    for model, convert in ((sd1_pipe.unet, convert_ldm_unet_checkpoint), (sd1_pipe.vae, convert_ldm_vae_checkpoint)):
        back = convert(ldm, dict(model.config))
        expected = model.state_dict()
        assert back.keys() == expected.keys()
        assert all(torch.equal(back[k], expected[k]) for k in expected)


def test_sd1_round_trip_gives_identical_images(sd1_pipe, sd1_file, sd1_dir, tmp_path):
    assert detect_family(sd1_file) is Family.SD1
    config = _config_only(sd1_dir, tmp_path / "config")
    loaded = load_pipeline(str(sd1_file), device="cpu", config_folder=str(config))
    assert (loaded.source.kind, loaded.family) == ("single_file", Family.SD1)
    assert (generate(loaded.pipe, seed=3) == generate(sd1_pipe, seed=3)).all()


def test_sd2_round_trip_uses_the_open_clip_layout(sd2_dir, tmp_path):
    pipe = load_pipeline(str(sd2_dir), device="cpu").pipe
    path = save_single_file(pipe, tmp_path / "tiny-sd2.safetensors")
    with safe_open(str(path), framework="pt") as f:
        assert "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight" in f.keys()
    assert detect_family(path) is Family.SD2
    loaded = load_pipeline(str(path), device="cpu", config_folder=str(_config_only(sd2_dir, tmp_path / "config")))
    assert (generate(loaded.pipe) == generate(pipe)).all()


def test_pickle_checkpoint_loads_only_with_opt_in(sd1_pipe, sd1_dir, tmp_path):
    path = tmp_path / "tiny-sd1.ckpt"
    torch.save({"state_dict": ldm_state_dict(sd1_pipe)}, path)
    with pytest.raises(ModelLoadError, match="pickle"):
        load_pipeline(str(path), device="cpu", config_folder=str(sd1_dir))
    loaded = load_pipeline(str(path), device="cpu", allow_pickle=True, config_folder=str(sd1_dir))
    assert (generate(loaded.pipe) == generate(sd1_pipe)).all()


def test_single_file_without_configs_offline(sd1_file, tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    with pytest.raises(ModelLoadError, match="--config"):
        load_pipeline(str(sd1_file), device="cpu")


def test_config_of_another_family_is_refused(sd1_file, sd2_dir):
    with pytest.raises(ModelLoadError, match="same family"):
        load_pipeline(str(sd1_file), device="cpu", config_folder=str(sd2_dir))


def test_half_precision_export(sd1_pipe):
    assert {t.dtype for t in ldm_state_dict(sd1_pipe, dtype=torch.float16).values()} == {torch.float16}


def test_refusals(sdxl_dir, sd1_pipe, tmp_path):
    with pytest.raises(ValueError, match="SDXL"):
        save_single_file(load_pipeline(str(sdxl_dir), device="cpu").pipe, tmp_path / "xl.safetensors")
    with pytest.raises(ValueError, match="safetensors"):
        save_single_file(sd1_pipe, tmp_path / "model.ckpt")
