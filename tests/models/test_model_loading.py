"""`resolve_source` and `load_pipeline` on tiny SD1, SD2-like and SDXL pipelines."""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from tiny_pipelines import IMAGE_SIZE, generate

from studio import paths
from studio.models import Family, ModelLoadError, load_pipeline, resolve_source


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch) -> Path:
    """Point the Hugging Face cache at an empty folder, so a developer's real cache cannot change results."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


# ------------------------------------------------------------------ resolve_source


def test_resolve_kinds(sd1_dir, tmp_path):
    for spec in ("pocket", "", None):
        source = resolve_source(spec)
        assert (source.kind, source.location) == ("pocket", str(paths.POCKET_MODEL_DIR))
    assert resolve_source(str(sd1_dir)).kind == "folder"
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    assert resolve_source(str(weights)).kind == "single_file"
    hub = resolve_source("stable-diffusion-v1-5/stable-diffusion-v1-5")
    assert (hub.kind, hub.location) == ("hub", "stable-diffusion-v1-5/stable-diffusion-v1-5")


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin"])
def test_pickle_checkpoints_need_opt_in(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="allow_pickle=True"):
        resolve_source(str(path))
    assert resolve_source(str(path), allow_pickle=True).kind == "single_file"


def test_folder_without_model_index(tmp_path):
    (tmp_path / "unet").mkdir()
    with pytest.raises(ModelLoadError, match="no model_index.json"):
        resolve_source(str(tmp_path))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("./missing.safetensors", "no file or folder"),
        ("/no/such/dir/model", "no file or folder"),
        ("just some words", "neither an existing file or folder nor a hub id"),
        ("a/b/c", "no file or folder"),
        ("a--b/c", "not a valid hub id"),
    ],
)
def test_unresolvable_specs(spec, message):
    with pytest.raises(ModelLoadError, match=message):
        resolve_source(spec)


def test_other_files_are_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hi")
    with pytest.raises(ModelLoadError, match=r"\.safetensors checkpoint"):
        resolve_source(str(path))


# ------------------------------------------------------------------ load_pipeline


@pytest.mark.parametrize(
    ("fixture", "family", "cls"),
    [
        ("sd1_dir", Family.SD1, StableDiffusionPipeline),
        ("sd2_dir", Family.SD2, StableDiffusionPipeline),
        ("sdxl_dir", Family.SDXL, StableDiffusionXLPipeline),
    ],
)
def test_load_folder_and_generate(request, fixture, family, cls):
    folder = request.getfixturevalue(fixture)
    loaded = load_pipeline(str(folder), device="cpu")
    assert type(loaded.pipe) is cls
    assert (loaded.family, loaded.device, loaded.dtype) == (family, "cpu", torch.float32)
    assert loaded.source.kind == "folder"
    assert loaded.pipe.unet.dtype == torch.float32
    if family is not Family.SDXL:
        assert loaded.pipe.safety_checker is None
    image = generate(loaded.pipe)
    assert image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert torch.isfinite(torch.from_numpy(image)).all()


def test_load_in_another_precision(sd1_dir):
    loaded = load_pipeline(str(sd1_dir), device="cpu", dtype="bf16")
    assert loaded.dtype == torch.bfloat16
    assert loaded.pipe.unet.dtype == torch.bfloat16


def test_local_loads_leave_the_offline_switch_as_it_was(sd1_dir):
    before = huggingface_hub.constants.HF_HUB_OFFLINE
    load_pipeline(str(sd1_dir), device="cpu")
    assert huggingface_hub.constants.HF_HUB_OFFLINE == before


def test_missing_hub_model_offline(empty_hf_cache):
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache") as info:
        load_pipeline("nobody-here/no-such-model", device="cpu")
    assert "hf download nobody-here/no-such-model" in str(info.value)


def test_hub_model_from_cache_offline(sd1_dir, empty_hf_cache):
    # The layout huggingface_hub writes: models--owner--name/{refs/main, snapshots/<commit>/...}
    repo = empty_hf_cache / "models--tiny--sd1"
    commit = "0" * 40
    shutil.copytree(sd1_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    loaded = load_pipeline("tiny/sd1", device="cpu")
    assert (loaded.source.kind, loaded.family) == ("hub", Family.SD1)
    assert generate(loaded.pipe).shape == (IMAGE_SIZE, IMAGE_SIZE, 3)


def test_pocket_not_built_yet(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "POCKET_MODEL_DIR", tmp_path / "pocket")
    with pytest.raises(ModelLoadError, match="not been built yet"):
        load_pipeline("pocket", device="cpu")


@pytest.mark.skipif(
    not (paths.POCKET_MODEL_DIR / "model_index.json").is_file(), reason="the pocket model is not built yet"
)
def test_pocket_model():
    loaded = load_pipeline(device="cpu")
    assert (loaded.source.kind, loaded.family) == ("pocket", Family.SD1)
    pipe = loaded.pipe
    pipe.set_progress_bar_config(disable=True)
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    image = pipe("a red circle", num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np")
    assert image.images[0].shape == (size, size, 3)


def test_fp16_variant_folder(sd1_dir, tmp_path):
    # What `hf download <repo> --include "*fp16*"` leaves: only *.fp16.safetensors weight files
    folder = tmp_path / "fp16-only"
    load_pipeline(str(sd1_dir), device="cpu").pipe.save_pretrained(folder, variant="fp16")
    assert not (folder / "unet" / "diffusion_pytorch_model.safetensors").exists()
    loaded = load_pipeline(str(folder), device="cpu")
    assert loaded.pipe.unet.dtype == torch.float32


def test_damaged_safetensors_file(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(ModelLoadError, match="Could not read 'broken.safetensors'"):
        load_pipeline(str(path), device="cpu")
