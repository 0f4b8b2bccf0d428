"""The REST API of a public studio (a Space): generation with the allowed models only and without LoRAs; no
training, runs or datasets (a REST caller has no visitor workspace). Answers checked in-process, nothing generated."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from studio.generate.engine import GenerationEngine
from studio.serve import rest
from studio.serve.admission import Admission
from studio.ui import visitors


class NoEngine(GenerationEngine):
    def generate(self, settings, on_step=None):
        raise AssertionError("a refused request must not reach the engine")


@pytest.fixture()
def public_api(tmp_path):
    workspaces = visitors.public_workspaces(tmp_path / "data")
    return TestClient(FastAPI(**rest.app_kwargs(NoEngine(), workspaces, Admission())))


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/api/v1/generate", {"prompt": "a red circle", "model": "runwayml/stable-diffusion-v1-5"}, "model"),
        ("post", "/api/v1/generate", {"prompt": "a red circle", "loras": {"runs/x": 1.0}}, "loras"),
        ("post", "/api/v1/train", {"preset": "lora-pocket", "dataset": "shapes"}, "training"),
        ("get", "/api/v1/runs", None, "runs"),
        ("get", "/api/v1/runs/some-run", None, "runs"),
        ("get", "/api/v1/datasets", None, "datasets"),
    ],
)
def test_public_rest_refuses_what_a_space_does_not_offer(public_api, method, path, body, field) -> None:
    answer = public_api.request(method, path, json=body)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "forbidden" and answer.json()["field"] == field


def test_public_health_names_the_mode_and_models(public_api) -> None:
    health = public_api.get("/api/v1/health").json()
    assert health["public"] is True and health["models"] == ["pocket"] and health["training"]["running"] is None
