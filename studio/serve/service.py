"""What the REST routes and the Gradio API endpoints do, over the generation engine and the workspace's jobs.

Both front doors call these functions, so a check (a model a public studio does not offer, a LoRA outside the data
folder, a preset given as a path) is made once, here, and answered with the same sentence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from studio import runs
from studio.adapters.stack import split_weight
from studio.data.caption_text import MAX_PROMPT_BYTES, check_prompt_size
from studio.generate.engine import GeneratedImage, GenerationEngine, GenerationSettings
from studio.generate.library import inside_data
from studio.paths import data_dir
from studio.serve.admission import Admission
from studio.train.config import list_presets, resolve_config
from studio.workspace import Workspace, Workspaces


class Forbidden(ValueError):
    """A request this server does not serve in its mode (public: training over REST, LoRAs, other models)."""


@dataclass(frozen=True)
class ApiAccess:
    """What callers of the APIs may use. A public studio (a Space) offers only its allowed base models, no LoRAs
    (they would be read from the shared data folder) and no training over REST (no visitor identity there)."""

    public: bool = False
    allowed_models: tuple[str, ...] | None = None  # None: any model the engine can load
    max_prompt_bytes: int = MAX_PROMPT_BYTES

    @classmethod
    def of(cls, workspaces: Workspaces) -> ApiAccess:
        if workspaces.public:
            limits = workspaces.limits
            return cls(public=True, allowed_models=tuple(limits.base_models), max_prompt_bytes=limits.max_prompt_bytes)
        return cls()

    def check_prompts(self, prompt: str, negative_prompt: str) -> None:
        """The prompts within this mode's size (a public studio's cap is below the engine's own)."""
        where = " of this public studio" if self.public else ""
        check_prompt_size("prompt", prompt, self.max_prompt_bytes, where)
        check_prompt_size("negative_prompt", negative_prompt, self.max_prompt_bytes, where)

    def check_generation(self, model: str, loras: dict[str, float]) -> None:
        if self.allowed_models is not None and model not in self.allowed_models:
            raise Forbidden(f"model: this public studio generates with {', '.join(self.allowed_models)} only")
        if self.public and loras:
            raise Forbidden("loras: this public studio generates without LoRAs")


def lora_path(name: str) -> str:
    """A LoRA named relative to the data folder ("runs/<id>", "loras/pink.safetensors"), never a path outside it."""
    if not name.strip():
        raise ValueError("loras: a LoRA name is empty")
    path = inside_data(data_dir() / name)  # an absolute name or "../" lands outside and is refused
    if not path.exists():
        raise ValueError(f"loras: no LoRA {name!r} in the data folder (give e.g. runs/<run id> or loras/<file>)")
    return str(path)


def generation_settings(
    access: ApiAccess,
    prompt: str,
    negative_prompt: str = "",
    seed: int = 0,
    steps: int = 25,
    guidance: float = 6.0,
    width: int = 0,
    height: int = 0,
    sampler: str = "default",
    count: int = 1,
    model: str = "pocket",
    loras: dict[str, float] | None = None,
) -> GenerationSettings:
    """Validated settings from an API call; `loras` maps a LoRA's name in the data folder to its weight."""
    access.check_prompts(prompt, negative_prompt)  # first: nothing else reads a prompt of any size
    loras = dict(loras or {})
    model = model.strip() or "pocket"
    access.check_generation(model, loras)  # before any file is looked at
    for name, weight in loras.items():
        if not isinstance(weight, int | float) or isinstance(weight, bool):
            raise ValueError(f"loras: the weight of {name!r} must be a number, got {weight!r}")
    return GenerationSettings(
        prompt=prompt,
        negative_prompt=negative_prompt,
        seed=seed,
        steps=steps,
        guidance=guidance,
        width=width,
        height=height,
        sampler=sampler,
        count=count,
        model=model,
        loras=[{"path": lora_path(name), "weight": float(weight)} for name, weight in loras.items()],
    )


def generate(engine: GenerationEngine, admission: Admission, settings: GenerationSettings) -> list[GeneratedImage]:
    """Generate within the server's limit: runs now, waits its turn, or raises `Busy`."""
    with admission.slot():
        return engine.generate(settings)


def echoed(result: GeneratedImage, loras: dict[str, float] | None) -> dict:
    """An image's parameters as the caller gave them: LoRAs by their names in the data folder, not server paths
    (a {"path": ...} dict would also be taken for a file by gradio_client)."""
    params = dict(result.params)
    params["loras"] = {name: float(weight) for name, weight in (loras or {}).items()}
    return params


def start_from_preset(ws: Workspace, preset: str, dataset: str, settings: dict | None = None) -> Path:
    """Start a run on a saved dataset from a preset, with `settings` ({"steps": 40, ...}) on top; its folder."""
    if preset not in list_presets():  # a name, never a path: the API reads no file of the caller's choosing
        raise ValueError(f"preset: no preset {preset!r}; known: {', '.join(list_presets())}")
    overrides = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (settings or {}).items()}
    config = resolve_config(preset=preset, overrides=overrides)

    for text in config.training.base_loras:  # as generate's LoRAs: the API reads no file outside the data folder
        try:
            inside_data(split_weight(text)[0])
        except ValueError as outside:
            raise ValueError(f"base_loras: {outside}") from None
    return ws.start_training(config, dataset)


def run_status(ws: Workspace, run_id: str) -> dict:
    """A run's status, last step, total steps, last loss, samples and checkpoints, from its folder."""
    return runs.replay(ws.run_path(run_id)).as_dict()


def list_runs(ws: Workspace) -> list[dict]:
    """Every run of the workspace, newest first, as `run_status` describes it."""
    return sorted((s.as_dict() for s in runs.list_runs(ws.runs_root)), key=lambda s: s["run_id"], reverse=True)
