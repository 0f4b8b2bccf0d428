"""Model family detection from folders, configs and checkpoint keys."""

from __future__ import annotations

import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

from studio.models import (
    Family,
    ModelLoadError,
    family_from_configs,
    family_from_folder,
    family_from_state_dict,
    pipeline_class,
)

SD_INDEX = {"_class_name": "StableDiffusionPipeline", "text_encoder": ["transformers", "CLIPTextModel"]}


def test_folders(sd1_dir, sd2_dir, sdxl_dir):
    assert family_from_folder(sd1_dir) is Family.SD1
    assert family_from_folder(sd2_dir) is Family.SD2
    assert family_from_folder(sdxl_dir) is Family.SDXL


@pytest.mark.parametrize(("cross_attention_dim", "family"), [(768, Family.SD1), (1024, Family.SD2), (128, Family.SD1)])
def test_cross_attention_width_decides_sd1_or_sd2(cross_attention_dim, family):
    # 128 is the pocket model: SD1-shaped, just smaller
    assert family_from_configs(SD_INDEX, {"cross_attention_dim": cross_attention_dim}) is family


def test_unsupported_pipelines_are_refused():
    with pytest.raises(ModelLoadError, match="FluxPipeline"):
        family_from_configs({"_class_name": "FluxPipeline"}, {})
    with pytest.raises(ModelLoadError, match="inpainting"):
        family_from_configs({"_class_name": "StableDiffusionInpaintPipeline"}, {"in_channels": 9})


def test_pipeline_class():
    assert pipeline_class(Family.SD1) is StableDiffusionPipeline
    assert pipeline_class("sd2") is StableDiffusionPipeline
    assert pipeline_class(Family.SDXL) is StableDiffusionXLPipeline


def _meta(*shape: int) -> torch.Tensor:
    return torch.empty(shape, device="meta")


def test_checkpoint_keys_of_full_size_models():
    to_k = "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
    assert family_from_state_dict({to_k: _meta(320, 768)}) is Family.SD1
    assert family_from_state_dict({to_k: _meta(320, 1024)}) is Family.SD2
    xl = {
        "model.diffusion_model.label_emb.0.0.weight": _meta(1280, 2816),
        "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": _meta(1280),
        to_k: _meta(640, 2048),
    }
    assert family_from_state_dict(xl) is Family.SDXL


def test_lora_and_partial_files_are_refused():
    with pytest.raises(ModelLoadError, match="LoRA"):
        family_from_state_dict({"lora_unet_down_blocks_0.lora_down.weight": _meta(4, 320)})
    with pytest.raises(ModelLoadError, match="not a complete checkpoint"):
        family_from_state_dict({"down_blocks.0.resnets.0.conv1.weight": _meta(4, 4, 3, 3)})


def test_missing_model_index(tmp_path):
    with pytest.raises(ModelLoadError, match="model_index.json"):
        family_from_folder(tmp_path)
