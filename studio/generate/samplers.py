"""Samplers by the names users know, built from the pipeline's own scheduler config."""

from __future__ import annotations

# name -> (diffusers scheduler class, config overrides, label shown to users)
SAMPLERS: dict[str, tuple[str, dict, str]] = {
    "default": ("", {}, "Model default"),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}, "DPM++ 2M"),
    "dpmpp_2m_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
        "DPM++ 2M Karras",
    ),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, "Euler a"),
    "euler": ("EulerDiscreteScheduler", {}, "Euler"),
    "ddim": ("DDIMScheduler", {}, "DDIM"),
    "unipc": ("UniPCMultistepScheduler", {}, "UniPC"),
    "lcm": ("LCMScheduler", {}, "LCM (needs an LCM model or LCM-LoRA)"),
}


def sampler_labels() -> dict[str, str]:
    return {name: label for name, (_, _, label) in SAMPLERS.items()}


def make_scheduler(name: str, model_scheduler):
    """A scheduler for sampler `name` that keeps the model's noise schedule (betas, prediction type).

    `model_scheduler` is the scheduler the model shipped with; "default" returns a fresh copy of it.
    """
    import diffusers

    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
    class_name, overrides, _ = SAMPLERS[name]
    scheduler_class = getattr(diffusers, class_name) if class_name else type(model_scheduler)
    return scheduler_class.from_config(model_scheduler.config, **overrides)
