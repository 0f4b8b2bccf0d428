"""LCM distillation: the consistency-model pieces, config checks, and a tiny run that trains, exports and resumes."""

from __future__ import annotations

import json

import pytest
import torch

from studio.distill.config import LcmDistillConfig
from studio.distill.lcm import DDIMSolver, boundary_scalings, distill


def test_boundary_scalings_make_the_model_the_identity_at_time_zero() -> None:
    c_skip, c_out = boundary_scalings(torch.tensor([0, 19, 999]), timestep_scaling=10.0)
    assert c_skip[0].item() == 1.0 and c_out[0].item() == 0.0
    # far from the boundary the model's own prediction dominates
    assert c_skip[2].item() < 1e-6 and c_out[2].item() > 0.999


def test_solver_grid_holds_every_timestep_the_lcm_sampler_visits() -> None:
    from diffusers import DDPMScheduler, LCMScheduler

    config = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    solver = DDIMSolver(DDPMScheduler(**config).alphas_cumprod, ddim_timesteps=50)
    sampler = LCMScheduler(**config)
    for steps in (1, 2, 4, 8):
        sampler.set_timesteps(steps)
        assert set(sampler.timesteps.tolist()) <= set(solver.timesteps.tolist())


def test_solver_step_from_exact_predictions_lands_on_the_previous_grid_point() -> None:
    from diffusers import DDPMScheduler

    alphas = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).alphas_cumprod
    solver = DDIMSolver(alphas, ddim_timesteps=50)
    x0, noise = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    index = torch.tensor([10, 30])
    previous = solver.step(x0, noise, index)
    t_prev = solver.timesteps[index] - solver.step_ratio
    expected = alphas[t_prev].sqrt().view(-1, 1, 1, 1) * x0 + (1 - alphas[t_prev]).sqrt().view(-1, 1, 1, 1) * noise
    assert torch.allclose(previous, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"loss": "l1"}, "loss must be one of"),
        ({"w_min": 8.0, "w_max": 3.0}, "w_min <= w_max"),
        ({"ddim_timesteps": 1}, "ddim_timesteps"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"target_modules": []}, "target_modules"),
        ({"latent_images": 4, "batch": 8}, "at least one batch"),
    ],
)
def test_config_refuses_bad_values(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        LcmDistillConfig(**change)


def _tiny(tmp_path, sd1_dir, **overrides) -> LcmDistillConfig:
    values = dict(
        model=str(sd1_dir),
        work_dir=str(tmp_path / "work"),
        out_dir=str(tmp_path / "tiny-lcm-lora"),
        steps=3,
        batch=2,
        latent_images=6,
        rank=2,
        alpha=2.0,
        # the tiny model's attention and resnet layers
        target_modules=["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"],
        checkpoint_every=1,
        log_every=1,
        warmup=0,
        lr=1e-2,
    )
    return LcmDistillConfig(**(values | overrides))


def test_tiny_distillation_trains_exports_and_resumes_exactly(tmp_path, sd1_dir) -> None:
    from safetensors.torch import load_file

    whole = distill(_tiny(tmp_path / "a", sd1_dir), log=lambda _: None)
    state = load_file(str(whole))
    assert state and all("lora" in key for key in state)
    assert all(v.dtype == torch.float16 for v in state.values())
    # B starts at zero: a trained LoRA has moved it, so the student no longer equals the teacher
    assert any(v.abs().max() > 0 for k, v in state.items() if "lora_B" in k)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "a" / "work" / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and all(loss == loss and loss > 0 for loss in losses)  # logged, finite

    # stopped after one step (as a killed session would be), then resumed: the same LoRA as the whole run
    stopped = _tiny(tmp_path / "b", sd1_dir)
    assert distill(stopped, log=lambda _: None, stop_after=1) is None
    messages: list[str] = []
    resumed = load_file(str(distill(stopped, log=messages.append)))
    assert any("resuming at step 1" in m for m in messages)
    assert state.keys() == resumed.keys()
    for key in state:
        assert torch.equal(state[key], resumed[key]), key
