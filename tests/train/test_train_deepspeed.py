"""DeepSpeed ZeRO-2 with the optimizer on the CPU (configs/accelerate/deepspeed-zero2-offload.yaml).

The refusals and the shipped config are checked everywhere; the real run needs the optional deepspeed package
(pip install -e ".[deepspeed]") and skips itself without it. On CPU it runs DeepSpeed's CPU accelerator with the
gloo backend and its CPU Adam (compiled once by ninja/g++ on first use, minutes on a 2-core machine).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from conftest import RESOLUTION, tiny_config

from studio import runs
from studio.train import distributed

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = PROJECT_ROOT / distributed.DEEPSPEED_CONFIG


def _accelerator(kind: str, zero_stage: int = 2):
    plugin = SimpleNamespace(zero_stage=zero_stage, deepspeed_config={})
    return SimpleNamespace(distributed_type=SimpleNamespace(value=kind), state=SimpleNamespace(deepspeed_plugin=plugin))


def _pipe():
    return SimpleNamespace(unet=torch.nn.Linear(2, 2), text_encoder=torch.nn.Linear(2, 2))


def test_shipped_config_is_zero2_with_the_optimizer_on_the_cpu_in_fp16_on_one_gpu() -> None:
    config = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    assert config["distributed_type"] == "DEEPSPEED"
    assert config["deepspeed_config"]["zero_stage"] == 2
    assert config["deepspeed_config"]["offload_optimizer_device"] == "cpu"
    assert config["deepspeed_config"]["offload_param_device"] == "none"
    assert (config["mixed_precision"], config["num_processes"], config["use_cpu"]) == ("fp16", 1, False)


def test_missing_deepspeed_names_the_install_command_and_the_config(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    with pytest.raises(ValueError) as error:
        distributed.require_deepspeed()
    assert "pip install deepspeed" in str(error.value) and distributed.DEEPSPEED_CONFIG in str(error.value)


def test_a_deepspeed_launch_without_deepspeed_fails_the_run_with_the_install_command(
    monkeypatch, tmp_path, sd1_dir, shapes_folder
) -> None:
    import importlib.util

    from studio.train.start import create_run, run_training

    run_dir = create_run(tiny_config(sd1_dir), shapes_folder, root=tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")  # what accelerate launch sets for a DeepSpeed config
    with pytest.raises(ValueError, match="pip install deepspeed"):
        run_training(run_dir)
    state = runs.replay(run_dir)
    assert state.status == "failed" and distributed.DEEPSPEED_CONFIG in state.reason


def test_deepspeed_is_requested_only_by_the_launcher_flag(monkeypatch) -> None:
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    assert not distributed.deepspeed_requested()
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    assert distributed.deepspeed_requested()


def test_fsdp_zero3_and_a_learning_text_encoder_are_refused_clearly() -> None:
    pipe = _pipe()
    unet_only, with_text = list(pipe.unet.parameters()), [*pipe.unet.parameters(), *pipe.text_encoder.parameters()]
    with pytest.raises(ValueError, match="FSDP is not supported"):
        distributed.refuse_unsupported(_accelerator("FSDP"), pipe, unet_only, "dreambooth")
    with pytest.raises(ValueError, match="ZeRO stage 3 is not supported"):
        distributed.refuse_unsupported(_accelerator("DEEPSPEED", zero_stage=3), pipe, unet_only, "dreambooth")
    with pytest.raises(ValueError, match="only the UNet can learn"):
        distributed.refuse_unsupported(_accelerator("DEEPSPEED"), pipe, with_text, "dreambooth")
    distributed.refuse_unsupported(_accelerator("DEEPSPEED"), pipe, unet_only, "dreambooth")  # accepted
    distributed.refuse_unsupported(_accelerator("NO"), pipe, with_text, "dreambooth")  # one process: anything


def test_run_config_sets_batch_accumulation_and_clipping_and_must_match_the_launch_precision(monkeypatch) -> None:
    accelerator = _accelerator("DEEPSPEED")
    accelerator.num_processes = 1
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    with pytest.raises(ValueError, match="--set mixed_precision=fp16"):
        distributed.configure_deepspeed(accelerator, 2, 3, 1.0, "no")
    distributed.configure_deepspeed(accelerator, 2, 3, 0.5, "fp16")
    config = accelerator.state.deepspeed_plugin.deepspeed_config
    assert (config["train_micro_batch_size_per_gpu"], config["gradient_accumulation_steps"]) == (2, 3)
    assert (config["train_batch_size"], config["gradient_clipping"]) == (6, 0.5)


def test_a_checkpoint_resumes_only_the_way_it_was_written() -> None:
    from studio.train.trainer_state import restore

    folder = Path("checkpoints/step-000003")
    # DeepSpeed's checkpoints keep the optimizer in deepspeed/, not in training_state.pt
    with pytest.raises(ValueError, match="written with DeepSpeed; resume it the same way"):
        restore(SimpleNamespace(engine=None), {"torch": {"lr_scheduler": {}}}, folder)
    with pytest.raises(ValueError, match="written without DeepSpeed"):
        restore(SimpleNamespace(engine=object()), {"torch": {"optimizer": {}, "lr_scheduler": {}}}, folder)


# ------------------------------------------------------------------ a real run (needs deepspeed)


def _free_port() -> int:
    # other test sessions on this machine may hold accelerate's default port 29500
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_dreambooth_under_deepspeed_zero2_offload_trains_cancels_and_resumes(tmp_path, sd1_dir, shapes_folder) -> None:
    """Bit-identity is not required under DeepSpeed (its CPU Adam is not torch's AdamW, and it owns the optimizer
    state): asserts that the run learns, and that a resume continues from the cancelled checkpoint."""
    pytest.importorskip("deepspeed")
    from safetensors.torch import load_file

    from studio.runs.checkpoints import TRAINABLE, list_checkpoints

    # the shipped config, turned into its CPU variant: no fp16 on a CPU
    launch = yaml.safe_load(SHIPPED.read_text(encoding="utf-8")) | {"mixed_precision": "no"}
    launch_file = tmp_path / "deepspeed-cpu.yaml"
    launch_file.write_text(yaml.safe_dump(launch), encoding="utf-8")
    settings = {
        "base_model": sd1_dir, "device": "cpu", "resolution": RESOLUTION, "steps": 4, "batch_size": 1,
        "gradient_accumulation": 2, "learning_rate": 1e-3, "checkpoint_every": 2, "sample_every": 0,
        "trigger": "sks", "instance_prompt": "a photo of sks circle", "class_prompt": "a photo of a circle",
        "use_captions": "false", "sample_prompts": "[a photo of sks circle]",
        "num_class_images": 2, "class_image_steps": 2,
    }  # fmt: skip
    environment = os.environ | {
        "STUDIO_DATA_DIR": str(tmp_path / "data"),
        "STUDIO_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "DS_ACCELERATOR": "cpu",
        "PYTHONPATH": str(PROJECT_ROOT),
        # the save of step 2 pauses after DeepSpeed's files are written; the cancel sent then is read after step 3
        "STUDIO_TEST_SLEEP_IN_SAVE": "2:4",
    }
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(launch_file)]
    accelerate += ["--main_process_port", str(_free_port()), "-m", "studio"]
    command = accelerate + ["train", "--preset", "dreambooth-pocket", "--dataset", str(shapes_folder)]
    command += ["--run-id", "ds", "--no-progress"] + [f"--set={k}={v}" for k, v in settings.items()]
    run_dir = tmp_path / "data" / "runs" / "ds"
    first = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 400
    while not list((run_dir / "checkpoints").glob(".step-000002.*.tmp/trainable.safetensors")):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0][-4000:]
        time.sleep(0.2)
    runs.send_command(run_dir, "cancel")
    output = first.communicate(timeout=300)[0]
    assert first.returncode == 0, output[-4000:]
    state = runs.replay(run_dir)
    assert (state.status, state.last_step) == ("cancelled", 3), output[-4000:]
    assert [c.name for c in list_checkpoints(run_dir)] == ["step-000002", "step-000003"]
    checkpoint = list_checkpoints(run_dir)[-1]
    # DeepSpeed's optimizer partition sits inside each checkpoint, which was renamed into place whole
    for folder in list_checkpoints(run_dir):
        assert list((folder / "deepspeed" / "zero").glob("*optim_states.pt")), folder
    assert not list((run_dir / "checkpoints").glob(".step-*"))
    at_cancel = load_file(str(checkpoint / TRAINABLE))

    environment.pop("STUDIO_TEST_SLEEP_IN_SAVE")
    resumed = subprocess.run(
        accelerate + ["runs", "resume", str(run_dir), "--no-progress"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    state = runs.replay(run_dir)
    events = runs.read_events(run_dir)
    assert state.status == "finished", state.reason
    assert [e["step"] for e in events if e["type"] == "started"] == [0, 3]  # the resume began at the checkpoint
    losses = [e["loss"] for e in events if e["type"] == "step"]
    assert [e["step"] for e in events if e["type"] == "step"] == [1, 2, 3, 4]
    assert all(torch.isfinite(torch.tensor(losses))), losses
    final = load_file(str(list_checkpoints(run_dir)[-1] / TRAINABLE))
    base = load_file(str(next((Path(sd1_dir) / "unet").glob("*.safetensors"))))
    changed = [name for name in final if not torch.equal(final[name], base[name.removeprefix("unet.")])]
    assert len(changed) > len(final) // 2, f"only {len(changed)} of {len(final)} tensors learned"
    # the resumed steps moved the weights on from the cancelled checkpoint
    assert any(not torch.equal(final[name], at_cancel[name]) for name in final)
    assert [e["path"] for e in state.exports], "the finished run exported its pipeline"
