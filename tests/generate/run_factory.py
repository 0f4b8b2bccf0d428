"""A finished pocket LoRA run without training it: a run folder whose checkpoints hold random (fixed) LoRA weights.

For tests of what reads runs (the Compare tab's checkpoint axis, the lists of runs): a real run takes minutes of a
shared CPU and adds nothing there. The checkpoints have the keys a real LoRA run saves, so they load as LoRAs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

ATTENTION = ["to_q", "to_k", "to_v", "to_out.0"]


def write_lora_run(
    runs_root: Path, run_id: str, steps: tuple[int, ...] = (1, 2), seed: int = 0, finished: bool = True
) -> Path:
    """`runs_root/run_id`: the lora-pocket preset's config, a checkpoint at each of `steps` (weights that grow with
    the step, so the columns of a grid differ) and the events of a run that finished; with `finished` False, of a
    run still training (in this process, which is alive: see `finish_run`)."""
    import peft
    from safetensors.torch import save_file

    from studio import runs
    from studio.models import load_pipeline
    from studio.paths import POCKET_MODEL_DIR
    from studio.runs.checkpoints import TRAINABLE, checkpoint_name
    from studio.train.config import resolve_config

    config = resolve_config(preset="lora-pocket", overrides={"steps": str(max(steps))})
    config.training.sample_prompts = ["a red circle on a black background"]
    folder = runs.create_run_folder(config.to_yaml(), {"source": "shapes", "images": []}, run_id, root=runs_root)
    pipe = load_pipeline(str(POCKET_MODEL_DIR), device="cpu", dtype=torch.float32).pipe
    torch.manual_seed(seed)
    lora = peft.LoraConfig(r=4, lora_alpha=4, target_modules=ATTENTION, init_lora_weights=False)
    pipe.unet.add_adapter(lora)
    runs.append_event(folder, "started", total_steps=max(steps), pid=os.getpid())
    for step in steps:
        state = {
            f"unet.{name}": (param.detach() * (4.0 * step if "lora_B" in name else 1.0)).clone().contiguous()
            for name, param in pipe.unet.named_parameters()
            if "lora_" in name
        }
        checkpoint = folder / "checkpoints" / checkpoint_name(step)
        checkpoint.mkdir(parents=True)
        save_file(state, str(checkpoint / TRAINABLE))
        runs.append_event(folder, "checkpoint", step=step, path=str(checkpoint.relative_to(folder)))
    if finished:
        runs.append_event(folder, "finished", step=max(steps))
    return folder


def finish_run(folder: Path, lora_file: Path) -> None:
    """The end of a run of `write_lora_run(finished=False)`: `lora_file` as its exported LoRA, then "finished"."""
    from studio import runs
    from studio.adapters.stack import LORA_FILE

    export = folder / "outputs" / "lora-diffusers" / LORA_FILE
    export.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(lora_file, export)
    runs.append_event(folder, "export", path=str(export.relative_to(folder)))
    runs.append_event(folder, "finished", step=len(list((folder / "checkpoints").iterdir())))
