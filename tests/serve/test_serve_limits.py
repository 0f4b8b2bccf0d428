"""Bounds on what one request may ask for, the same at every door: the engine's settings, the CLI, REST, the Gradio
API (through `studio.serve.service`) and the Generate tab. Checked in-process; nothing is generated."""

from __future__ import annotations

import re
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from studio.cli import main
from studio.data.caption_text import MAX_PROMPT_BYTES
from studio.generate.engine import GenerationEngine, GenerationSettings
from studio.serve import rest, service
from studio.serve.admission import Admission
from studio.ui import generate_tab, visitors
from studio.workspace import PublicLimits, Workspaces


class NoEngine(GenerationEngine):
    def generate(self, settings, on_step=None):
        raise AssertionError("a refused request must not reach the engine")


def api(workspaces) -> TestClient:
    return TestClient(FastAPI(**rest.app_kwargs(NoEngine(), workspaces, Admission())))


def test_the_engine_refuses_a_prompt_over_its_bytes_limit_naming_the_limit() -> None:
    assert len(GenerationSettings(prompt="x" * MAX_PROMPT_BYTES).prompt) == MAX_PROMPT_BYTES
    with pytest.raises(ValueError, match=f"prompt is too long: {MAX_PROMPT_BYTES + 1} bytes.*{MAX_PROMPT_BYTES}"):
        GenerationSettings(prompt="x" * (MAX_PROMPT_BYTES + 1))
    # bytes, not characters: 1100 four-byte characters are 4400 bytes
    with pytest.raises(ValueError, match="4400 bytes"):
        GenerationSettings(prompt="🙂" * 1100)
    with pytest.raises(ValueError, match="negative_prompt is too long"):
        GenerationSettings(prompt="a circle", negative_prompt="x" * 10_000_000)
    with pytest.raises(ValueError, match="seed must be"):
        GenerationSettings(prompt="a circle", seed=2**70)


def test_the_cli_refuses_a_long_prompt_in_one_line(tmp_path, capsys) -> None:
    code = main(["generate", "-p", "x" * 5000, "--steps", "1", "--out", str(tmp_path)])
    error = capsys.readouterr().err
    assert code == 2 and f"the limit is {MAX_PROMPT_BYTES} bytes" in error and "Traceback" not in error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("public", "limit"), [(False, MAX_PROMPT_BYTES), (True, PublicLimits().max_prompt_bytes)])
def test_rest_answers_400_with_the_limit_for_a_long_prompt(tmp_path, public, limit) -> None:
    workspaces = visitors.public_workspaces(tmp_path / "data") if public else Workspaces(tmp_path / "data")
    for field in ("prompt", "negative_prompt"):
        body = {"prompt": "a red circle", "steps": 2} | {field: "x" * (limit + 1)}
        answer = api(workspaces).post("/api/v1/generate", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid"
        assert f"{field} is too long" in answer.json()["message"] and f"{limit} bytes" in answer.json()["message"]


def test_rest_refuses_a_huge_body_before_parsing_it(tmp_path) -> None:
    client = api(Workspaces(tmp_path / "data"))
    started = time.perf_counter()
    answer = client.post("/api/v1/generate", content=b'{"prompt": "' + b"x" * 20_000_000 + b'"}')
    assert answer.status_code == 413 and str(rest.MAX_BODY_BYTES) in answer.json()["message"]
    assert time.perf_counter() - started < 5
    # a chunked body declares no length: its bytes are counted as they come
    chunks = (b"x" * 65536 for _ in range(300))
    answer = client.post("/api/v1/generate", content=chunks, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    # a body within the limit still reaches the route
    answer = client.post("/api/v1/generate", json={"prompt": "a red circle", "steps": 0})
    assert answer.status_code == 400 and "steps must be between" in answer.json()["message"]


def test_the_gradio_api_and_the_generate_tab_cap_a_visitors_prompt(tmp_path) -> None:
    public = service.ApiAccess.of(visitors.public_workspaces(tmp_path / "data"))
    cap = PublicLimits().max_prompt_bytes
    with pytest.raises(ValueError, match=f"limit of this public studio is {cap} bytes"):
        service.generation_settings(public, "x" * (cap + 1))  # what the `generate` endpoint calls
    with pytest.raises(ValueError, match=f"limit of this public studio is {cap} bytes"):
        generate_tab.form_settings(public, {"prompt": "x" * (cap + 1), "model": "pocket"})
    with pytest.raises(ValueError, match="generates with pocket only"):
        generate_tab.form_settings(public, {"prompt": "a red circle", "model": "/etc"})
    private = service.ApiAccess.of(Workspaces(tmp_path / "private"))
    assert generate_tab.form_settings(private, {"prompt": "x" * (cap + 1)}).prompt == "x" * (cap + 1)


def test_rest_train_refuses_settings_out_of_bounds_before_a_run_folder_exists(tmp_path) -> None:
    client = api(Workspaces(tmp_path / "data"))
    for settings, words in (
        ({"steps": 1e12}, "steps must be a whole number"),
        ({"steps": 10**12}, "steps must be at most"),
        ({"lora.rank": 100000}, "rank must be at most 1024"),
        ({"resolution": 1000000}, "resolution must be at most 4096"),
        ({"learning_rate": "inf"}, "learning_rate must be a finite number"),
    ):
        answer = client.post("/api/v1/train", json={"preset": "lora-pocket", "dataset": "shapes", "settings": settings})
        assert answer.status_code == 400 and words in answer.json()["message"], answer.text
    assert not (tmp_path / "data" / "runs").exists()


@pytest.mark.parametrize(
    ("preset", "settings", "words"),
    [
        ("lora-pocket", {"lora.rank": 256}, "lora.rank: this public studio allows at most 64, not 256"),
        ("lora-pocket", {"resolution": 512}, "resolution: this public studio allows at most 128"),
        ("lora-pocket", {"batch_size": 8, "gradient_accumulation": 4}, "batch_size x gradient_accumulation"),
        ("lora-pocket", {"sample_steps": 150}, "sample_steps: this public studio allows at most 50"),
        ("dreambooth-lora-pocket", {"dreambooth.num_class_images": 500}, "num_class_images: this public studio"),
        ("dreambooth-lora-pocket", {"dreambooth.lora_rank": 128}, "dreambooth.lora_rank: this public studio"),
    ],
)
def test_a_visitor_is_held_to_the_public_caps_through_the_gradio_api(tmp_path, preset, settings, words) -> None:
    workspaces = visitors.public_workspaces(tmp_path / "data")
    visitor = workspaces.get("c" * 32)
    with pytest.raises(ValueError, match=re.escape(words)):
        service.start_from_preset(visitor, preset, "shapes", settings)  # what the `train` endpoint calls
    assert not visitor.runs_root.exists()


@pytest.mark.parametrize(
    ("body", "code", "field", "words"),
    [
        (b'{"prompt": "a red circle", "steps": true}', 422, "steps", "valid integer"),  # lax mode took it as 1
        (b'{"prompt": "a red circle", "steps": 4.5}', 422, "steps", "valid integer"),
        (b'{"prompt": "a red circle", "seed": 1180591620717411303424}', 400, None, "seed must be"),  # 2**70
        (b"{prompt:", 422, None, "the body is not valid JSON: Expecting property name"),  # not field "1"
    ],
)
def test_rest_answers_what_is_wrong_with_a_number_or_the_json(tmp_path, body, code, field, words) -> None:
    answer = api(Workspaces(tmp_path / "data")).post(
        "/api/v1/generate", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == code and answer.json().get("field") == field and words in answer.json()["message"]


def test_train_refuses_a_base_lora_that_is_no_lora_or_outside_the_data_folder_at_once(tmp_path) -> None:
    from studio.train.config import resolve_config
    from studio.train.start import create_run

    client = api(Workspaces(tmp_path / "data"))
    body = {"preset": "lora-pocket", "dataset": "shapes", "settings": {"base_loras": "[/etc/passwd:1]"}}
    answer = client.post("/api/v1/train", json=body)
    assert answer.status_code == 400 and answer.json()["message"].startswith("base_loras: passwd: only files inside")
    # from the CLI (a person's own machine, any folder): a file that is no LoRA is refused before a run folder
    from studio.pocket.world import Scene, render

    images = tmp_path / "images"
    images.mkdir()
    render(Scene("circle", "red", "white"), 64).save(images / "circle.png")
    (images / "circle.txt").write_text("a red circle on a white background")
    overrides = {"base_loras": "[/etc/passwd:1]", "sample_prompts": "[a circle]"}
    config = resolve_config(preset="lora-pocket", overrides=overrides)
    with pytest.raises(ValueError, match="base_loras: /etc/passwd is not a LoRA"):
        create_run(config, images, root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
