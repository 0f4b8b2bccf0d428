"""The JSON bodies of the REST API. Types and unknown keys are checked here (a 422 naming the field); ranges and
names are checked by the engine's own settings (a 400 with its sentence), so the limits are written down once."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from studio.generate.engine import GenerationSettings


def _help(name: str) -> str:
    return GenerationSettings.__dataclass_fields__[name].metadata["help"]


class GenerateBody(BaseModel):
    # a misspelt key ("stpes") is an error, not a silent default; strict: `"steps": true` or `4.5` is not a number
    # of steps (lax mode took true as 1); the example is what "Try it out" sends
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"prompt": "a yellow triangle on a black background", "seed": 1, "count": 2}]},
    )

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
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"preset": "lora-pocket", "dataset": "shapes", "settings": {"steps": 40}}]},
    )

    preset: str = Field(description="A preset's name (GET /api/v1/presets lists them), never a file path.")
    dataset: str = Field(description="A dataset's name in the data folder, or '<name>/prepared/<variant>'.")
    settings: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description='Overrides on top of the preset, e.g. {"steps": 40, "lora.rank": 8}.'
    )


class GeneratedImage(BaseModel):
    png_base64: str = Field(description="The PNG, base64; its generation parameters are inside it too.")
    parameters: dict = Field(description="What made it: prompt, seed, steps, sampler, size, model, loras ...")


class GenerateAnswer(BaseModel):
    """`POST /generate` with format json (documentation only: the route builds the dict itself)."""

    images: list[GeneratedImage]


class TrainAnswer(BaseModel):
    run_id: str
    status_url: str = Field(description="GET it for the run's status, last step and loss.")


class ErrorBody(BaseModel):
    """Every error answer (see studio/serve/rest.py): what kind, one sentence, and the field when one is wrong."""

    error: Literal["invalid", "forbidden", "not_found", "busy", "storage", "internal"]
    message: str
    field: str | None = None
    retry_after: int | None = Field(None, description="Seconds to wait before asking again (busy only).")


ERROR_MEANINGS = {
    400: "A value the engine refuses (out of range, unknown name); the message says which and why.",
    403: "Not offered in this mode (a public studio's REST API, a model outside the allowed list).",
    404: "No such run.",
    413: "The request body is over 64 KB (a prompt takes at most 4 KB).",
    422: "Not the JSON this route takes: a wrong type or an unknown key, named in `field`.",
    500: "Something unexpected; the details are in the server's log.",
    507: "The server cannot write (its disk is full or read-only); the message names the folder.",
    503: "Busy: enough is running already; ask again after `retry_after` seconds (also the Retry-After header).",
}


def error_responses(*codes: int) -> dict:
    """The OpenAPI `responses` for these error codes, all answered with an ErrorBody."""
    return {code: {"model": ErrorBody, "description": ERROR_MEANINGS[code]} for code in (*codes, 500)}
