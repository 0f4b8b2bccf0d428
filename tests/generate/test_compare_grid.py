"""Comparison grids on the tiny SD1 pipeline: a run's checkpoints as LoRAs, axes, one labelled PNG, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lora_factory import write_lora
from PIL import Image

from studio.cli import main
from studio.generate import GenerationEngine, GenerationSettings, read_params
from studio.generate.grid import Axis, render_grid

RESOLUTION = 32


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, sd1_dir):
    """A 2-step tiny LoRA run with a checkpoint at every step and its exports."""
    from studio.pocket.world import Scene, render
    from studio.train.config import resolve_config
    from studio.train.start import create_run, run_training

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("shapes")
    for index, scene in enumerate([Scene("circle", "red", "white"), Scene("square", "blue", "green")]):
        render(scene, RESOLUTION).save(folder / f"s{index}.png")
        (folder / f"s{index}.txt").write_text(scene.caption, encoding="utf-8")
    settings = {
        "base_model": str(sd1_dir),
        "device": "cpu",
        "resolution": RESOLUTION,
        "steps": 2,
        "rank": 4,
        "learning_rate": 5e-2,
        "checkpoint_every": 1,
        "sample_steps": 2,
        "sample_every": 0,
        "sample_prompts": '["a red circle", "a blue square"]',
    }
    config = resolve_config(overrides={k: str(v) for k, v in settings.items()})
    run_dir = create_run(config, folder, root=tmp_path_factory.mktemp("runs"))
    assert run_training(run_dir) == "finished"
    return run_dir


def test_a_checkpoint_loads_as_the_lora_it_was_exported_as(finished_run, sd1_dir) -> None:
    engine = GenerationEngine(device="cpu")

    def image(path):
        settings = GenerationSettings(prompt="a red circle", steps=2, model=str(sd1_dir), loras=[{"path": str(path)}])
        return np.asarray(engine.generate(settings)[0].image, dtype=float)

    last = image(finished_run / "checkpoints" / "step-000002")
    assert np.abs(last - image(finished_run)).max() <= 1  # the run folder means its exported LoRA
    assert np.abs(last - image(finished_run / "checkpoints" / "step-000001")).mean() > 0


def test_checkpoint_grid_from_a_run_in_one_command(finished_run, tmp_path) -> None:
    out = tmp_path / "grid.png"
    assert main(["compare", "--run", str(finished_run), "--device", "cpu", "--out", str(out)]) == 0
    grid = Image.open(out)
    params = read_params(grid)
    assert params["grid"]["x"]["labels"] == ["base model", "step 1", "step 2"]  # what training started from, first
    assert params["grid"]["y"]["values"] == ["a red circle", "a blue square"]
    assert grid.width >= 3 * 128 and grid.height >= 2 * 128  # 32 px cells enlarged to be readable


def test_the_base_model_column_is_drawn_without_the_runs_lora(finished_run, sd1_dir) -> None:
    from studio.generate.grid import best_checkpoint_axes

    engine = GenerationEngine(device="cpu")
    x, y, base = best_checkpoint_axes(finished_run)
    grid = render_grid(engine, GenerationSettings(prompt=y.values[0], **base), x)
    assert [cell["loras"] for cell in grid.cells][0] == []
    plain = engine.generate(GenerationSettings(prompt=y.values[0], **base))[0].image
    assert np.array_equal(np.asarray(grid.images[0]), np.asarray(plain))
    assert not np.array_equal(np.asarray(grid.images[-1]), np.asarray(plain))


def test_grid_cells_share_the_seed_and_vary_only_their_axis(sd1_dir, tmp_path) -> None:
    diffusers_file, _ = write_lora(sd1_dir, tmp_path, seed=4)
    engine = GenerationEngine(device="cpu")
    base = GenerationSettings(
        prompt="a red circle", steps=2, seed=11, model=str(sd1_dir), loras=[{"path": str(diffusers_file)}]
    )
    x = Axis.parse("lora_weight=0,1")
    y = Axis.parse("sampler=ddim,euler")
    grid = render_grid(engine, base, x, y)
    assert len(grid.cells) == 4 and {c["seed"] for c in grid.cells} == {11}
    plain = GenerationSettings(prompt="a red circle", steps=2, seed=11, model=str(sd1_dir), sampler="ddim")
    weight_zero_ddim = grid.images[[(c["loras"][0]["weight"], c["sampler"]) for c in grid.cells].index((0.0, "ddim"))]
    assert np.array_equal(np.asarray(weight_zero_ddim), np.asarray(engine.generate(plain)[0].image))
    assert engine.adapters(engine.load(str(sd1_dir)).pipe).lora_loads == 1  # one LoRA file read for all cells


def test_axes_parse_and_refuse_bad_input(finished_run) -> None:
    assert Axis.parse("prompt=a red circle, big|a blue square").values == ("a red circle, big", "a blue square")
    assert Axis.parse("guidance=1,2.5").values == (1.0, 2.5)
    assert Axis.parse(f"checkpoint={finished_run}").labels == ("step 1", "step 2")
    files = Axis.parse(f"checkpoint=none,{finished_run / 'checkpoints' / 'step-000001'}")
    assert [files.label(i) for i in range(2)] == ["base model", "step 1"]
    assert Axis.parse("checkpoint=/loras/a.safetensors,/loras/b.safetensors").label(1) == "b"
    with pytest.raises(ValueError, match="unknown axis"):
        Axis.parse("colour=red")
    with pytest.raises(ValueError, match="numbers"):
        Axis.parse("guidance=high")
    with pytest.raises(ValueError, match="unknown sampler"):
        Axis.parse("sampler=ddim,fastest")
    assert main(["compare", "--x", "guidance=1,2"]) == 2  # no prompt: one clear line, exit 2
