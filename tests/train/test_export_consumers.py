"""Each export checked against the rules of the tools that read it (kohya sd-scripts, ComfyUI, diffusers old and
new, transformers 4), on tiny models with the real SD 1.5, SD 2 and SDXL module names. The rules themselves are
in `consumer_rules.py`, restated from each tool's code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config, tiny_method_config
from consumer_rules import (
    a1111_diffusers_unmatched_keys,
    comfy_load,
    diffusers_032_text_ranks,
    sd_scripts_unused_keys,
)
from tiny_pipelines import build_sd, build_sdxl, generate

ALPHA, RANK = 2.0, 4
UNET_ATTENTION = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
POCKET_TARGETS = UNET_ATTENTION + ["conv1", "conv2", "ff.net.0.proj", "ff.net.2", "conv", "conv_shortcut"]
POCKET_TARGETS += ["proj_in", "proj_out", "conv_in", "conv_out"]  # presets/lora-pocket.yaml


def _build(family: str, tokenizer):
    if family == "sd1":
        return build_sd(tokenizer, text_width=32)
    if family == "sd2":
        return build_sd(tokenizer, text_width=1024, text_layers=1, use_linear_projection=True)
    return build_sdxl(tokenizer)


def _adapted(family: str, tokenizer, unet_targets=UNET_ATTENTION, text_encoder: bool = True):
    """A pipeline with a visible LoRA (alpha != rank) on the UNet and, optionally, every text encoder."""
    import peft

    pipe = _build(family, tokenizer)
    torch.manual_seed(1)
    config = dict(r=RANK, lora_alpha=ALPHA, init_lora_weights=False)
    pipe.unet.add_adapter(peft.LoraConfig(target_modules=unet_targets, **config))
    encoders = [pipe.text_encoder, getattr(pipe, "text_encoder_2", None)] if text_encoder else []
    for encoder in filter(None, encoders):
        encoder.add_adapter(peft.LoraConfig(target_modules=TEXT_TARGETS, **config))
    with torch.no_grad():
        for part in (pipe.unet, *filter(None, encoders)):
            for name, param in part.named_parameters():
                if "lora_B" in name:
                    param.mul_(4.0)  # peft's random B is small; make the change plain in a 2-step image
    return pipe


def _kohya(pipe, tmp_path: Path) -> dict:
    from safetensors.torch import load_file

    from studio.adapters.kohya import save_lora_kohya

    return load_file(str(save_lora_kohya(pipe, tmp_path / "lora-kohya.safetensors")))


# ---------------------------------------------------------------- failure 1: kohya sd-scripts


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_kohya_file_is_read_by_sd_scripts_with_every_key_used(family, tiny_tokenizer, tmp_path) -> None:
    pipe = _adapted(family, tiny_tokenizer)
    state = _kohya(pipe, tmp_path)
    assert sd_scripts_unused_keys(pipe, state) == []
    text_prefixes = {key.split("_text_model_")[0] for key in state if key.startswith("lora_te")}
    assert text_prefixes == ({"lora_te1", "lora_te2"} if family == "sdxl" else {"lora_te"})
    layers = {key.split(".")[0] for key in state}
    assert all(
        {f"{layer}.lora_down.weight", f"{layer}.lora_up.weight", f"{layer}.alpha"} <= set(state) for layer in layers
    )
    assert {float(state[f"{layer}.alpha"]) for layer in layers} == {ALPHA}


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_kohya_metadata_is_what_sd_scripts_writes(family, tiny_tokenizer, tmp_path) -> None:
    from safetensors import safe_open

    from studio.adapters.kohya import save_lora_kohya

    path = save_lora_kohya(_adapted(family, tiny_tokenizer, POCKET_TARGETS), tmp_path / "lora.safetensors")
    with safe_open(str(path), "pt") as stream:
        metadata = stream.metadata()
    assert metadata["ss_network_module"] == "networks.lora"
    assert (metadata["ss_network_dim"], metadata["ss_network_alpha"]) == (str(RANK), str(ALPHA))
    assert metadata["ss_base_model_version"] == {"sd1": "sd_v1", "sdxl": "sdxl_base_v1-0"}[family]
    assert metadata["ss_v2"] == "False"
    # 3x3 convolutions are sd-scripts' conv_dim / conv_alpha network arguments
    assert json.loads(metadata["ss_network_args"]) == {"conv_dim": str(RANK), "conv_alpha": str(ALPHA)}


def test_kohya_export_names_the_modules_sd_scripts_ignores(tiny_tokenizer, tmp_path) -> None:
    """The pocket preset's conv_in / conv_out sit outside every block sd-scripts adapts: the export says so."""
    from studio.adapters.kohya import kohya_consumer_warnings, save_lora_kohya

    pipe = _adapted("sd1", tiny_tokenizer, POCKET_TARGETS, text_encoder=False)
    path = save_lora_kohya(pipe, tmp_path / "lora.safetensors")
    from safetensors.torch import load_file

    unused = {key.split(".")[0] for key in sd_scripts_unused_keys(pipe, load_file(str(path)))}
    assert unused == {"lora_unet_conv_in", "lora_unet_conv_out"}
    warnings = kohya_consumer_warnings(path)
    assert len(warnings) == 1 and "sd-scripts" in warnings[0]
    assert all(name in warnings[0] for name in unused)
    # and the others apply them: ComfyUI reads every key
    assert comfy_load(pipe, load_file(str(path)))[1] == []
    plain = save_lora_kohya(_adapted("sd1", tiny_tokenizer), tmp_path / "plain.safetensors")
    assert kohya_consumer_warnings(plain) == []


def test_a_run_with_the_pocket_targets_warns_about_sd_scripts_at_export(tmp_path, sd1_dir, shapes_folder) -> None:
    from studio import runs
    from studio.train.start import create_run, run_training

    config = tiny_config(sd1_dir, steps=1, target_modules="[to_q,conv1,conv_in,conv_out]")
    run_dir = create_run(config, shapes_folder, root=tmp_path)
    assert run_training(run_dir) == "finished"
    (warning,) = [w for w in runs.replay(run_dir).warnings if "sd-scripts" in str(w)]
    assert "lora_unet_conv_in" in str(warning) and "lora_unet_conv_out" in str(warning)


# ---------------------------------------------------------------- failure 2: older diffusers


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_diffusers_file_text_encoder_keys_are_read_by_diffusers_032(family, tiny_tokenizer, tmp_path) -> None:
    from safetensors.torch import load_file

    from studio.adapters.lora_files import save_lora_diffusers

    state = load_file(str(save_lora_diffusers(_adapted(family, tiny_tokenizer), tmp_path / "lora")))
    parts = ["text_encoder"] + (["text_encoder_2"] if family == "sdxl" else [])
    for part in parts:
        ups = [key for key in state if key.startswith(f"{part}.") and key.endswith("lora_B.weight")]
        assert ups and all(key.startswith(f"{part}.text_model.encoder.layers.") for key in ups)
        assert len(diffusers_032_text_ranks(state, part)) == len(ups)


@pytest.mark.parametrize("text_encoder", [False, True])
def test_diffusers_file_gives_the_trained_image_without_the_metadata_older_diffusers_ignore(
    text_encoder, tiny_tokenizer, tmp_path
) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    from studio.adapters.lora_files import save_lora_diffusers

    pipe = _adapted("sd1", tiny_tokenizer, text_encoder=text_encoder)
    reference = generate(pipe)
    path = save_lora_diffusers(pipe, tmp_path / "lora")
    with safe_open(str(path), "pt") as stream:
        bare = {key: stream.get_tensor(key) for key in stream.keys()}
    save_file(bare, str(tmp_path / "bare.safetensors"))  # no adapter metadata: what diffusers 0.32 sees
    for folder, name in ((path.parent, path.name), (tmp_path, "bare.safetensors")):
        fresh = _build("sd1", tiny_tokenizer)
        assert np.abs(generate(fresh) - reference).max() > 0.05  # the LoRA shows
        fresh.load_lora_weights(str(folder), weight_name=name)
        assert np.abs(generate(fresh) - reference).max() <= 1 / 255, name


# ---------------------------------------------------------------- failure 3: ComfyUI


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_a1111_on_diffusers_places_every_kohya_key(family, tiny_tokenizer, tmp_path) -> None:
    pipe = _adapted(family, tiny_tokenizer, POCKET_TARGETS)
    assert a1111_diffusers_unmatched_keys(pipe, _kohya(pipe, tmp_path)) == []


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_comfyui_reads_every_kohya_key_at_alpha_over_rank(family, tiny_tokenizer, tmp_path) -> None:
    pipe = _adapted(family, tiny_tokenizer, POCKET_TARGETS)
    state = _kohya(pipe, tmp_path)
    patches, unused = comfy_load(pipe, state)
    assert unused == []
    assert len(patches) == len([key for key in state if key.endswith(".alpha")])
    assert set(patches.values()) == {ALPHA / RANK}


def test_comfyui_users_are_told_to_take_the_kohya_file(tiny_tokenizer, tmp_path) -> None:
    """ComfyUI leaves most of a diffusers-format file unread; the table in the UI and README sends them to kohya."""
    from safetensors.torch import load_file

    from studio.adapters.lora_files import save_lora_diffusers
    from studio.train.which_file import WHICH_FILE_FOR_WHICH_TOOL

    pipe = _adapted("sd1", tiny_tokenizer)
    _, unused = comfy_load(pipe, load_file(str(save_lora_diffusers(pipe, tmp_path / "lora"))))
    assert unused  # the attention layers: ComfyUI expects `.processor.to_q`, diffusers writes `.to_q`
    rows = {line.split("|")[1].strip(): line for line in WHICH_FILE_FOR_WHICH_TOOL.splitlines() if line.count("|") > 2}
    assert "lora-kohya.safetensors" in rows["ComfyUI"] and "lora-kohya.safetensors" in rows["kohya sd-scripts"]
    assert "pytorch_lora_weights.safetensors" in rows["diffusers"]
    assert "lora-kohya.safetensors" in rows["A1111 / Forge"]
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert WHICH_FILE_FOR_WHICH_TOOL.strip() in readme


def test_the_table_is_shown_with_run_downloads_and_the_saved_mix(tmp_path) -> None:
    from studio.train.which_file import WHICH_FILE_FOR_WHICH_TOOL
    from studio.ui.app import build_app
    from studio.workspace import Workspaces

    components = build_app(workspaces=Workspaces(tmp_path / "data")).get_config_file()["components"]
    shown = {
        c["props"].get("elem_id")
        for c in components
        if c["type"] == "markdown" and WHICH_FILE_FOR_WHICH_TOOL.strip() in str(c["props"].get("value"))
    }
    assert {"runs-which-file", "pg-which-file"} <= shown


# ---------------------------------------------------------------- kohya from a mix: the same naming


def test_a_saved_mix_is_named_as_sd_scripts_names_it(tiny_tokenizer) -> None:
    from studio.adapters.merge import mix_state_dict

    pipe = _adapted("sd1", tiny_tokenizer)
    state = mix_state_dict(pipe, ["default"])
    assert any(key.startswith("lora_te_text_model_encoder_layers_") for key in state)
    assert sd_scripts_unused_keys(pipe, state) == []
    assert comfy_load(pipe, state)[1] == []


# ---------------------------------------------------------------- failure 4: pipeline folders in transformers 4


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_pipeline_folder_reads_in_transformers_4(family, tiny_tokenizer, tmp_path) -> None:
    from safetensors import safe_open
    from transformers import CLIPTokenizer

    from studio.train.methods.dreambooth.method import save_pipeline

    pipe = _build(family, tiny_tokenizer)
    assert save_pipeline(pipe, tmp_path / "pipeline", "a red circle") == 0.0  # and transformers 5 reads it back
    _, info = type(pipe.text_encoder).from_pretrained(tmp_path / "pipeline" / "text_encoder", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    for name in ("text_encoder", "text_encoder_2")[: 2 if family == "sdxl" else 1]:
        with safe_open(str(tmp_path / "pipeline" / name / "model.safetensors"), "pt") as stream:
            keys = set(stream.keys())
        encoder = getattr(pipe, name)
        # transformers 4's CLIPTextModel / CLIPTextModelWithProjection names, every weight under text_model
        expected = {
            k if k.startswith(("text_model.", "text_projection.")) else f"text_model.{k}" for k in encoder.state_dict()
        }
        assert keys == expected
    for name in ("tokenizer", "tokenizer_2")[: 2 if family == "sdxl" else 1]:
        folder = tmp_path / "pipeline" / name
        # transformers 4's CLIPTokenizer reads these two: vocab.json, and merges.txt after a version line
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").strip().split("\n")
        assert lines[0].startswith("#version") and all(len(line.split()) == 2 for line in lines[1:])
        assert vocab == getattr(pipe, name).get_vocab()
        rebuilt = CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
        prompt = "a red circle on a blue square"
        assert rebuilt(prompt).input_ids == getattr(pipe, name)(prompt).input_ids


# ---------------------------------------------------------------- exports of real runs, each LoRA method


@pytest.mark.parametrize(
    ("method", "family"), [("lora", "sd1"), ("lora", "sdxl"), ("dreambooth", "sd1"), ("dreambooth", "sdxl")]
)
def test_a_runs_lora_exports_are_read_by_every_consumer(method, family, tmp_path, request, shapes_folder) -> None:
    from safetensors.torch import load_file

    from studio import runs
    from studio.models import load_pipeline
    from studio.train.start import create_run, run_training

    base_dir = request.getfixturevalue(f"{family}_dir")
    if method == "lora":
        config = tiny_config(base_dir, steps=1, train_text_encoder="true", target_modules="[to_q,to_v,conv1,conv_in]")
    else:
        settings = {"steps": 1, "checkpoint_every": 0, "use_lora": True, "lora_rank": 4}
        settings |= {"instance_prompt": "a photo of sks circle", "with_prior_preservation": False}
        config = tiny_method_config(base_dir, "dreambooth", settings)
    run_dir = create_run(config, shapes_folder, root=tmp_path)
    assert run_training(run_dir) == "finished"
    exports = {Path(e["path"]).name: run_dir / e["path"] for e in runs.replay(run_dir).exports}
    base = load_pipeline(str(base_dir), device="cpu", dtype=torch.float32).pipe

    kohya = load_file(str(exports["lora-kohya.safetensors"]))
    assert comfy_load(base, kohya)[1] == [] and a1111_diffusers_unmatched_keys(base, kohya) == []
    unused = {key.split(".")[0] for key in sd_scripts_unused_keys(base, kohya)}
    assert unused == ({"lora_unet_conv_in"} if method == "lora" else set())
    diffusers = load_file(str(exports["pytorch_lora_weights.safetensors"]))
    for part in ("text_encoder", "text_encoder_2"):
        ups = [key for key in diffusers if key.startswith(f"{part}.") and key.endswith("lora_B.weight")]
        assert len(diffusers_032_text_ranks(diffusers, part)) == len(ups)
    if method == "lora":
        assert any(key.startswith("text_encoder.") for key in diffusers)
