"""Textual Inversion on the tiny SD1 pipeline: validation, only the new rows learn, prompts, exports, resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from conftest import RESOLUTION, assert_same_weights, final_weights

from studio import runs
from studio.train import conditioning, export, loop
from studio.train.config import resolve_config
from studio.train.export import export_trainer
from studio.train.methods.textual_inversion.config import TextualInversionConfig
from studio.train.methods.textual_inversion.method import OBJECT_TEMPLATES, STYLE_TEMPLATES, TextualInversionMethod
from studio.train.start import create_run, resume_run, run_training

TOKEN = "<shape-x>"
PROMPT = f"a {TOKEN} on a green background"


def ti_config(sd1_dir: Path, **overrides):
    """The object pocket preset scaled to the tiny pipeline; `overrides` are --set style."""
    settings = {
        "base_model": str(sd1_dir),
        "device": "cpu",
        "resolution": RESOLUTION,
        "steps": 3,
        "batch_size": 2,
        "learning_rate": 5e-2,
        "adam_weight_decay": 1e-2,  # on, so a missed restore of the other rows would show
        "checkpoint_every": 0,
        "sample_every": 3,
        "sample_steps": 2,
        "sample_prompts": f'["{PROMPT}"]',
        "placeholder_token": TOKEN,
        "initializer_token": "art",  # one token in the tiny 600-word vocabulary
        "num_vectors": 2,
    }
    settings.update(overrides)
    return resolve_config(preset="ti-object-pocket", overrides={k: str(v) for k, v in settings.items()})


def tiny_pipe(sd1_dir: Path):
    from studio.models import load_pipeline

    return load_pipeline(str(sd1_dir), device="cpu", dtype=torch.float32).pipe


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"num_vectors": 0}, "num_vectors must be between 1 and 16"),
        ({"num_vectors": 17}, "num_vectors must be between 1 and 16"),
        ({"learnable_property": "texture"}, "learnable_property must be one of object, style"),
        ({"placeholder_token": "my token"}, "placeholder_token must be one word"),
        ({"initializer_token": ""}, "initializer_token must be one word"),
        ({"placeholder_token": "<a/b>"}, "placeholder_token must not contain path characters"),
    ],
)
def test_config_refuses_bad_values(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TextualInversionConfig(**fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"initializer_token": "zqxjv"}, r"initializer_token 'zqxjv' is 5 tokens .* must be exactly one"),
        ({"placeholder_token": "art", "initializer_token": "red"}, "placeholder_token 'art' is already a token"),
    ],
)
def test_setup_refuses_words_the_tokenizer_cannot_use(sd1_dir, fields: dict, message: str) -> None:
    method = TextualInversionMethod(TextualInversionConfig(**fields))
    with pytest.raises(ValueError, match=message):
        method.setup(tiny_pipe(sd1_dir))


def test_sdxl_is_refused_clearly(sdxl_dir) -> None:
    from studio.models import load_pipeline

    pipe = load_pipeline(str(sdxl_dir), device="cpu", dtype=torch.float32).pipe
    with pytest.raises(ValueError, match="not SDXL"):
        TextualInversionMethod(TextualInversionConfig()).setup(pipe)


def test_presets_resolve() -> None:
    for name, kind in [("ti-object-pocket", "object"), ("ti-style-pocket", "style")]:
        config = resolve_config(preset=name)
        assert config.method == "textual_inversion" and config.method_config.learnable_property == kind
    assert resolve_config(preset="ti-object-sd15").training.learning_rate == 5e-4


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sd1_dir, shapes_folder):
    """A finished 3-step run: its trainer (in memory), its exports and every caption the loop encoded."""
    run_dir = create_run(ti_config(sd1_dir), shapes_folder, root=tmp_path_factory.mktemp("ti-runs"))
    encoded: list[str] = []
    original = conditioning.encode_prompts

    def recording(pipe, captions, device):
        encoded.extend(captions)
        return original(pipe, captions, device)

    conditioning.encode_prompts = recording
    try:
        trainer = loop.prepare_trainer(run_dir)
        assert loop.train(trainer) == "finished"
    finally:
        conditioning.encode_prompts = original
    files = export_trainer(trainer)
    return trainer, files, encoded


def test_only_the_new_rows_learn(trained, sd1_dir) -> None:
    trainer, _, _ = trained
    base = tiny_pipe(sd1_dir)
    pipe, method = trainer.pipe, trainer.method
    old_vocabulary = base.text_encoder.get_input_embeddings().weight.shape[0]
    weight = pipe.text_encoder.get_input_embeddings().weight.detach()
    assert weight.shape[0] == old_vocabulary + 2 and method.token_ids == [old_vocabulary, old_vocabulary + 1]
    # every original row bit-identical (weight decay was on: the restore, not luck, keeps them)
    assert torch.equal(weight[:old_vocabulary], base.text_encoder.get_input_embeddings().weight)
    initial = base.text_encoder.get_input_embeddings().weight[base.tokenizer.convert_tokens_to_ids("art</w>")]
    for row in weight[old_vocabulary:]:
        assert not torch.equal(row, initial)  # the placeholder's rows moved away from 'art'
    # and nothing else in the pipeline moved
    for part in ("unet", "vae", "text_encoder"):
        trained_state = getattr(pipe, part).state_dict()
        for name, tensor in getattr(base, part).state_dict().items():
            if name.endswith("token_embedding.weight"):
                continue
            assert torch.equal(trained_state[name], tensor), f"{part}.{name} changed"


def test_placeholder_expands_to_all_vectors(trained) -> None:
    trainer, _, encoded = trained
    expanded = f"{TOKEN} {TOKEN}_1"
    templates = [c for c in encoded if c]
    assert templates and all(expanded in c for c in templates)  # every training prompt, every vector
    assert all(c.replace(expanded, "{}") in OBJECT_TEMPLATES for c in templates)  # the "object" templates
    ids = trainer.pipe.tokenizer(templates[0]).input_ids
    assert all(token_id in ids for token_id in trainer.method.token_ids)
    # sample and export prompts: diffusers' pipeline expands the bare placeholder the same way
    assert trainer.pipe.maybe_convert_prompt(PROMPT, trainer.pipe.tokenizer) == PROMPT.replace(TOKEN, expanded)
    samples = [e for e in runs.read_events(trainer.run_dir) if e["type"] == "sample"]
    assert [e["prompt"] for e in samples] == [PROMPT] and (trainer.run_dir / samples[0]["path"]).is_file()


def test_style_uses_the_style_templates() -> None:
    method = TextualInversionMethod(
        TextualInversionConfig(placeholder_token="<s>", num_vectors=3, learnable_property="style")
    )
    captions = {method.training_caption(seed=0, position=p, index=0) for p in range(20)}
    assert len(captions) > 1 and all(c.replace("<s> <s>_1 <s>_2", "{}") in STYLE_TEMPLATES for c in captions)
    assert method.training_caption(0, 5, 1) == method.training_caption(0, 5, 1)  # resume sees the same prompt


def test_caption_mode_puts_the_new_word_where_each_caption_has_its_trigger() -> None:
    method = TextualInversionMethod(
        TextualInversionConfig(placeholder_token="<s>", num_vectors=2, learnable_property="caption", trigger="zq")
    )
    caption = "a purple zq on a black background"
    assert method.training_caption(0, 0, 0, caption) == "a purple <s> <s>_1 on a black background"
    # whole words only, any case; a caption without the trigger still teaches the word
    assert method.training_caption(0, 0, 0, "ZQ, zqx on brown") == "<s> <s>_1, zqx on brown"
    assert method.training_caption(0, 0, 0, "a star on brown") == "<s> <s>_1, a star on brown"
    with pytest.raises(ValueError, match="needs the captions' trigger word"):
        TextualInversionConfig(learnable_property="caption")


def test_both_exports_reload_and_reproduce_the_trained_output(trained, sd1_dir) -> None:
    from safetensors.torch import load_file

    trainer, files, _ = trained
    assert [f.name for f in files] == ["learned_embeds.safetensors", "shape-x.safetensors"]
    embeds = trainer.method.learned_embeds(trainer.pipe)
    diffusers_file, a1111_file = (load_file(str(f)) for f in files)
    assert diffusers_file.keys() == {TOKEN} and torch.equal(diffusers_file[TOKEN], embeds)
    assert a1111_file.keys() == {"emb_params"} and torch.equal(a1111_file["emb_params"], embeds)

    loop.set_train_mode(trainer, False)
    reference = export.render(trainer.pipe, PROMPT, RESOLUTION)
    base_image = export.render(tiny_pipe(sd1_dir), PROMPT, RESOLUTION)
    assert abs(reference - base_image).max() > 1e-3  # the learnt word makes a difference to compare
    for file in files:
        fresh = tiny_pipe(sd1_dir)
        fresh.load_textual_inversion(str(file), token=TOKEN)
        assert export.max_difference(reference, fresh, PROMPT, RESOLUTION) < 1e-5, file.name
    events = [e for e in runs.read_events(trainer.run_dir) if e["type"] == "export"]
    assert len(events) == 2 and all(e["max_difference"] < 1e-5 for e in events)


RESUME = {
    "steps": 6,
    "gradient_accumulation": 2,
    "lr_scheduler": "cosine",
    "warmup_steps": 2,
    "caption_dropout": 0.3,
    "offset_noise": 0.1,
    "checkpoint_every": 2,
}


def test_cancel_then_resume_is_bit_identical(tmp_path, sd1_dir, shapes_folder) -> None:
    config = ti_config(sd1_dir, **RESUME)
    reference = create_run(config, shapes_folder, root=tmp_path / "reference")
    assert run_training(reference, export=False) == "finished"

    run_dir = create_run(dataclasses.replace(config), shapes_folder, root=tmp_path / "cancelled")

    def cancel_at_3(event):
        if event["type"] == "step" and event["step"] == 3:
            runs.send_command(run_dir, "cancel")

    assert run_training(run_dir, on_event=cancel_at_3, export=False) == "cancelled"
    checkpoint = final_weights(run_dir)
    assert checkpoint.keys() == {"learned_embeds", "token_ids"} and checkpoint["learned_embeds"].shape[0] == 2
    assert resume_run(run_dir) == "finished"
    assert_same_weights(final_weights(run_dir), final_weights(reference))


def test_cli_trains_the_style_preset_and_exports_again(tmp_path, monkeypatch, capsys, sd1_dir, shapes_folder) -> None:
    from studio.cli import main

    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STUDIO_THREADS", "1")
    settings = {"base_model": sd1_dir, "device": "cpu", "resolution": RESOLUTION, "steps": 2, "sample_every": 0}
    settings |= {"initializer_token": "art", "learning_rate": 5e-2}
    argv = ["train", "--preset", "ti-style-pocket", "--dataset", str(shapes_folder), "--run-id", "ti-cli"]
    argv += [f"--set={k}={v}" for k, v in settings.items()]
    assert main(argv) == 0
    assert "finished" in capsys.readouterr().out
    # a later export rebuilds the placeholder from the checkpoint alone and still reproduces the output
    assert main(["runs", "export", "ti-cli"]) == 0
    assert "a1111/style.safetensors" in capsys.readouterr().out
    exports = [e for e in runs.read_events(tmp_path / "runs" / "ti-cli") if e["type"] == "export"]
    assert len(exports) == 4 and all(e["max_difference"] < 1e-5 for e in exports)
