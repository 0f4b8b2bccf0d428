"""LoRA smoke training on the tiny SD1 pipeline: only the adapter learns; NaN stops the run; exports reload."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import RESOLUTION, tiny_config

from studio import runs
from studio.train import loop
from studio.train.loop import TrainingStopped, prepare_trainer, train
from studio.train.start import create_run, run_training


def _all_parameters(pipe) -> dict[str, torch.Tensor]:
    out = {}
    for part in ("unet", "text_encoder", "vae"):
        for name, p in getattr(pipe, part).named_parameters():
            out[f"{part}.{name}"] = p.detach().clone()
    return out


@pytest.mark.parametrize(
    ("variant", "extra"),
    [("lora", {}), ("dora", {}), ("loha", {}), ("lokr", {}), ("lora", {"gradient_checkpointing": "true"})],
)
def test_smoke_train_changes_the_adapter_and_nothing_else(tmp_path, sd1_dir, shapes_folder, variant, extra) -> None:
    config = tiny_config(sd1_dir, steps=3, learning_rate=1e-2, variant=variant, **extra)
    run_dir = create_run(config, shapes_folder, root=tmp_path)
    trainer = prepare_trainer(run_dir)
    before = _all_parameters(trainer.pipe)
    assert train(trainer) == "finished"
    after = _all_parameters(trainer.pipe)

    changed = {name for name in before if not torch.equal(before[name], after[name])}
    adapter = {name for name in before if any(tag in name for tag in ("lora_", "hada_", "lokr_"))}
    assert adapter and changed, "no adapter was added or nothing learned"
    assert changed <= adapter, f"base weights changed: {sorted(changed - adapter)[:3]}"
    assert set(trainer.method.parameters(trainer.pipe)) <= adapter
    losses = [e for e in runs.read_events(run_dir) if e["type"] == "step"]
    assert [e["step"] for e in losses] == [1, 2, 3] and all(e["loss"] > 0 for e in losses)


def test_nan_loss_stops_with_a_failed_event(tmp_path, sd1_dir, shapes_folder, monkeypatch) -> None:
    from studio.train import loop

    real_loss, calls = loop.diffusion_loss, []

    def loss_that_explodes(*args, **kwargs):
        calls.append(1)
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(loop, "diffusion_loss", loss_that_explodes)
    run_dir = create_run(tiny_config(sd1_dir, steps=5), shapes_folder, root=tmp_path)
    with pytest.raises(TrainingStopped, match="learning_rate"):
        run_training(run_dir)
    state = runs.replay(run_dir)
    assert state.status == "failed" and state.last_step == 2
    assert "lower the learning_rate" in state.reason


@pytest.mark.parametrize(
    ("learning_rate", "words"),
    [
        (1e39, "trained values became inf or NaN by step 1"),  # one Adam step of 1e39 is inf in float32
        (1e30, "the trained model renders NaN"),  # finite weights, but so big that the model overflows
    ],
)
def test_a_step_that_makes_the_model_non_finite_fails_the_run_and_exports_nothing(
    tmp_path, sd1_dir, shapes_folder, learning_rate, words
) -> None:
    """The loss of a step is computed before its update, so the last step's damage shows in no loss: the weights
    and the exported model are checked too (learning_rate=inf 'finished' with every LoRA value NaN)."""
    run_dir = create_run(tiny_config(sd1_dir, steps=1, learning_rate=learning_rate), shapes_folder, root=tmp_path)
    with pytest.raises(TrainingStopped, match=words):
        run_training(run_dir)
    state = runs.replay(run_dir)
    assert state.status == "failed" and "lower the learning_rate" in state.reason
    assert not list(run_dir.glob("outputs/**/*.safetensors"))
    if learning_rate > 1e38:
        assert state.checkpoints == []  # nothing inf was saved


@pytest.mark.parametrize("check", ["quick", "full"])
def test_an_export_check_of_nan_fails_the_run_and_removes_the_exports(
    tmp_path, sd1_dir, shapes_folder, monkeypatch, check
) -> None:
    from studio.train import export, export_check

    monkeypatch.setattr(export, "verify_lora_file", lambda *args: float("nan"))
    monkeypatch.setattr(export_check, "lora_in_place", lambda *args: float("nan"))
    run_dir = create_run(tiny_config(sd1_dir, steps=1, export_check=check), shapes_folder, root=tmp_path)
    with pytest.raises(TrainingStopped, match="export check of .* gave a difference of nan"):
        run_training(run_dir)
    state = runs.replay(run_dir)
    assert state.status == "failed" and "lower the learning_rate" in state.reason
    assert not list(run_dir.glob("outputs/**/*.safetensors"))


def test_commands_sample_now_and_save_now(tmp_path, sd1_dir, shapes_folder) -> None:
    config = tiny_config(sd1_dir, steps=3, sample_prompts='["a red circle"]')
    run_dir = create_run(config, shapes_folder, root=tmp_path)

    def on_event(event):
        if event["type"] == "step" and event["step"] == 1:
            runs.send_command(run_dir, "sample_now")
            runs.send_command(run_dir, "save_now")

    assert run_training(run_dir, on_event=on_event, export=False) == "finished"
    state = runs.replay(run_dir)
    assert [s["step"] for s in state.samples] == [1]
    assert (run_dir / state.samples[0]["path"]).stat().st_size > 0
    assert [c["step"] for c in state.checkpoints] == [1, 3]


def test_exports_reload_and_reproduce_with_alpha_not_rank(tmp_path, sd1_dir, shapes_folder) -> None:
    """alpha (2) != rank (4): the reloaded files must carry the true scale and reproduce the in-memory model."""
    from diffusers.utils import convert_state_dict_to_kohya
    from peft.utils import get_peft_model_state_dict
    from safetensors import safe_open
    from safetensors.torch import load_file

    from studio.models import load_pipeline
    from studio.train.export import export_trainer, render

    config = tiny_config(sd1_dir, steps=4, learning_rate=5e-2, rank=4, alpha=2, sample_prompts='["a red circle"]')
    run_dir = create_run(config, shapes_folder, root=tmp_path)
    trainer = prepare_trainer(run_dir)
    train(trainer)
    files = export_trainer(trainer)
    names = sorted(f.relative_to(run_dir).as_posix() for f in files)
    assert names == ["outputs/lora-diffusers/pytorch_lora_weights.safetensors", "outputs/lora-kohya.safetensors"]
    assert not [p for p in (run_dir / "outputs").rglob("*") if p.is_file() and p.suffix != ".safetensors"]

    # the adapted model must differ from the base, or the comparison below proves nothing
    base = load_pipeline(str(sd1_dir), device="cpu", dtype=torch.float32).pipe
    adapted = render(trainer.pipe, "a red circle", RESOLUTION)
    assert float(abs(render(base, "a red circle", RESOLUTION) - adapted).max()) > 1e-3

    exports = [e for e in runs.read_events(run_dir) if e["type"] == "export"]
    assert len(exports) == 2 and all(e["max_difference"] < 1e-4 for e in exports)

    # kohya: true alpha, where diffusers' own conversion writes the rank
    kohya = load_file(str(run_dir / "outputs/lora-kohya.safetensors"))
    alphas = {k: v.item() for k, v in kohya.items() if k.endswith(".alpha")}
    assert alphas and set(alphas.values()) == {2.0}
    assert all(k.startswith("lora_unet_") for k in kohya)
    naive = convert_state_dict_to_kohya(
        {f"unet.{k}": v for k, v in get_peft_model_state_dict(trainer.pipe.unet).items()}
    )
    assert {v.item() for k, v in naive.items() if k.endswith(".alpha")} == {4}  # why we overwrite it

    # diffusers: the scale alpha / rank is in lora_B, as readers that ignore the metadata (diffusers 0.32) need;
    # the metadata then says alpha = rank
    with safe_open(str(run_dir / names[0]), "pt") as stream:
        metadata = json.loads(stream.metadata()["lora_adapter_metadata"])
        key = next(k for k in stream.keys() if k.endswith("lora_B.weight"))
        written = stream.get_tensor(key)
    assert metadata["unet.lora_alpha"] == 4 and metadata["unet.r"] == 4
    trained = get_peft_model_state_dict(trainer.pipe.unet)[key.removeprefix("unet.")]
    assert torch.allclose(written, trained * 0.5)


def test_attention_and_convolution_lora_exports_reload(tmp_path, sd1_dir, shapes_folder) -> None:
    """diffusers' convert_state_dict_to_diffusers renames attention keys but not convolution keys; a file that
    mixes both styles reloads without its attention LoRA. Our exports keep peft's names throughout."""
    config = tiny_config(sd1_dir, steps=2, learning_rate=5e-2, target_modules="[to_q,conv1,ff.net.2]")
    run_dir = create_run(config, shapes_folder, root=tmp_path)
    assert run_training(run_dir) == "finished"
    exports = [e for e in runs.read_events(run_dir) if e["type"] == "export"]
    assert len(exports) == 2 and all(e["max_difference"] < 1e-4 for e in exports), exports
    assert not runs.replay(run_dir).warnings


def test_text_encoder_lora_exports_reload(tmp_path, sd1_dir, shapes_folder) -> None:
    config = tiny_config(sd1_dir, steps=2, learning_rate=5e-2, train_text_encoder="true", alpha=8)
    run_dir = create_run(config, shapes_folder, root=tmp_path)
    assert run_training(run_dir) == "finished"
    exports = [e for e in runs.read_events(run_dir) if e["type"] == "export"]
    assert len(exports) == 2 and all(e["max_difference"] < 1e-4 for e in exports)
    from safetensors.torch import load_file

    kohya = load_file(str(run_dir / "outputs/lora-kohya.safetensors"))
    assert any(k.startswith("lora_te_") for k in kohya)
    # sd-scripts' name for SD 1.x's one text encoder (lora_te1_ / lora_te2_ are SDXL's two), which A1111 and
    # ComfyUI read too: lora_te_text_model_encoder_layers_0_self_attn_q_proj
    assert all(k.startswith("lora_te_text_model_encoder_layers_") for k in kohya if k.startswith("lora_te"))


def test_a_studio_dataset_is_prepared_and_its_trigger_fills_sample_prompts(tmp_path, sd1_dir, shapes_folder) -> None:
    from studio.data.importer import ImportOptions, import_dataset
    from studio.data.validate import ImageRules

    dataset, report = import_dataset(
        "shapes",
        [shapes_folder],
        root=tmp_path / "datasets",
        options=ImportOptions(rules=ImageRules(resolution=RESOLUTION), trigger="zq"),
    )
    assert len(report.accepted) == 4, report.summary()
    config = tiny_config(sd1_dir, steps=1, sample_prompts='["a <trigger> on a green background"]', sample_every=1)
    run_dir = create_run(config, dataset.root, root=tmp_path / "runs")
    manifest = json.loads((run_dir / runs.DATASET).read_text())
    assert len(manifest["items"]) == 4 and all(i["caption"].startswith("zq") for i in manifest["items"])
    assert (dataset.root / "prepared" / f"center-{RESOLUTION}" / "prepared.json").is_file()
    assert run_training(run_dir, export=False) == "finished"
    assert [s["prompt"] for s in runs.replay(run_dir).samples] == ["a zq on a green background"]


def test_dora_exports_reload_and_reproduce(tmp_path, sd1_dir, shapes_folder) -> None:
    config = tiny_config(sd1_dir, steps=2, learning_rate=5e-2, variant="dora", alpha=2)
    run_dir = create_run(config, shapes_folder, root=tmp_path)
    assert run_training(run_dir) == "finished"
    exports = [e for e in runs.read_events(run_dir) if e["type"] == "export"]
    assert [e["path"] for e in exports] == ["outputs/lora-diffusers/pytorch_lora_weights.safetensors"]
    assert exports[0]["max_difference"] < 1e-4


def test_out_of_memory_fails_with_concrete_advice(tmp_path, sd1_dir, shapes_folder, monkeypatch) -> None:
    from studio.train import loop

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop, "micro_batch_loss", out_of_memory)
    run_dir = create_run(tiny_config(sd1_dir), shapes_folder, root=tmp_path)
    with pytest.raises(TrainingStopped):
        run_training(run_dir)
    reason = runs.replay(run_dir).reason
    advice = ("batch_size", "gradient_checkpointing", "resolution", "adamw8bit", "mixed_precision")
    assert all(word in reason for word in advice)


def test_adamw8bit_without_bitsandbytes_says_what_to_do(tmp_path, sd1_dir, shapes_folder, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if not installed
    run_dir = create_run(tiny_config(sd1_dir, optimizer="adamw8bit"), shapes_folder, root=tmp_path)
    with pytest.raises(ValueError, match="bitsandbytes"):
        run_training(run_dir)
    assert "bitsandbytes" in runs.replay(run_dir).reason


def test_lokr_exports_a_peft_adapter_only(tmp_path, sd1_dir, shapes_folder) -> None:
    from safetensors.torch import load_file

    run_dir = create_run(tiny_config(sd1_dir, steps=1, variant="lokr"), shapes_folder, root=tmp_path)
    assert run_training(run_dir) == "finished"
    assert [e["path"] for e in runs.replay(run_dir).exports] == ["outputs/peft/adapter_model.safetensors"]
    assert any("lokr_" in key for key in load_file(str(run_dir / "outputs/peft/adapter_model.safetensors")))
    assert json.loads((run_dir / "outputs/peft/adapter_config.json").read_text())["peft_type"] == "LOKR"


def test_xformers_without_the_package_is_refused_before_loading(tmp_path, sd1_dir, shapes_folder, monkeypatch) -> None:
    import importlib.util

    import studio.models

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "xformers" else real_find_spec(name, *a)
    )
    for module in (studio.models, loop):  # the loop loads through its own name for it
        monkeypatch.setattr(module, "load_pipeline", lambda *a, **k: pytest.fail("the model was loaded"))
    run_dir = create_run(tiny_config(sd1_dir, attention="xformers"), shapes_folder, root=tmp_path)
    with pytest.raises(ValueError, match="attention xformers needs the xformers package"):
        run_training(run_dir)
    with pytest.raises(ValueError, match="attention"):
        tiny_config(sd1_dir, attention="flash")
