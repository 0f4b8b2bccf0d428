"""The JSON bodies of the REST API. Types and unknown keys are checked here (a 422 naming the field); ranges and
names are checked by the engine's own settings (a 400 with its sentence), so the limits are written down once."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from studio.generate.engine import GenerationSettings


def _help(name: str) -> str:
    return GenerationSettings.__dataclass_fields__[name].metadata["help"]


class GenerateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key ("stpes") is an error, not a silent default

    prompt: str = Field(description=_help("prompt"))
    negative_prompt: str = Field("", description=_help("negative_prompt"))
    seed: int = Field(0, description=_help("seed"))
    steps: int = Field(25, description=_help("steps"))
    guidance: float = Field(6.0, description=_help("guidance"))
    width: int = Field(0, description=_help("width"))
    height: int = Field(0, description=_help("height"))
    sampler: str = Field("default", description=_help("sampler"))
    count: int = Field(1, description=_help("count"))
    model: str = Field("pocket", description=_help("model"))
    loras: dict[str, float] = Field(
        default_factory=dict,
        description='LoRAs by their place in the data folder, with weights: {"runs/<run id>": 0.8, '
        '"loras/pink.safetensors": 0.5}.',
    )
    format: Literal["json", "png"] = Field(
        "json", description="json: every image as base64 with its parameters; png: one image as image/png."
    )

    def settings_fields(self) -> dict:
        return self.model_dump(exclude={"format"})


class TrainBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: str = Field(description="A preset's name (GET /api/v1/presets lists them), never a file path.")
    dataset: str = Field(description="A dataset's name in the data folder, or '<name>/prepared/<variant>'.")
    settings: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description='Overrides on top of the preset, e.g. {"steps": 40, "lora.rank": 8}.'
    )
