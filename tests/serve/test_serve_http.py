"""`studio serve` in a subprocess on 127.0.0.1, driven as another program would: REST with urllib, and the Gradio
API with gradio_client. Real generations on the pocket model (64x64, few steps) and a 2-step training run."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
import urllib.error
import urllib.request

import pytest
from PIL import Image
from studio_server import free_port, serve

from studio.generate.png_metadata import read_params
from studio.serve.schemas import ErrorBody

PROMPT = "a red circle on a black background"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    argv = ["-m", "studio", "serve", "--port", str(port), "--max-running", "1", "--max-waiting", "1"]
    yield from serve(tmp_path_factory.mktemp("serve-data"), argv, port)


def call(server, path: str, body: dict | None = None, raw: bytes | None = None) -> tuple[int, dict, bytes]:
    """(status, headers, body bytes) of a GET, or of a POST when a body is given; 4xx/5xx are answers, not errors."""
    data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server["url"] + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as answer:
        return answer.code, dict(answer.headers), answer.read()


def test_health_and_an_openapi_schema_of_the_rest_api_alone(server) -> None:
    status, _, body = call(server, "/api/v1/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["public"] is False
    assert health["generation"] == {"running": 0, "waiting": 0, "max_running": 1, "max_waiting": 1}
    paths = json.loads(call(server, "/api/v1/openapi.json")[2])["paths"]
    assert {"/api/v1/generate", "/api/v1/train", "/api/v1/runs/{run_id}"} <= set(paths)
    assert all(path.startswith("/api/v1/") for path in paths)  # none of Gradio's internal routes
    # every error a route can answer is documented, with the one error body all of them share
    generate = paths["/api/v1/generate"]["post"]["responses"]
    assert {"200", "400", "403", "422", "500", "503"} <= set(generate)
    assert generate["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "404" in paths["/api/v1/runs/{run_id}"]["get"]["responses"]


def test_the_docs_page_takes_its_script_and_style_from_this_server(server) -> None:
    status, _, body = call(server, "/api/v1/docs")
    html = body.decode()
    assert status == 200 and "cdn" not in html.lower()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {"/api/v1/docs-static/swagger-ui-bundle.js", "/api/v1/docs-static/swagger-ui.css"} <= set(assets)
    for asset in assets:
        status, headers, content = call(server, asset)
        assert status == 200 and len(content) > 1000, asset
    assert call(server, "/api/v1/docs-static/../../app.py")[0] == 404  # the folder is all it serves


def test_generate_returns_pngs_with_the_parameters_echoed(server) -> None:
    body = {"prompt": PROMPT, "steps": 4, "seed": 5, "count": 2, "width": 64, "height": 64, "sampler": "euler"}
    status, _, raw = call(server, "/api/v1/generate", body)
    assert status == 200, raw
    images = json.loads(raw)["images"]
    assert [image["parameters"]["seed"] for image in images] == [5, 6]
    for image in images:
        png = Image.open(io.BytesIO(base64.b64decode(image["png_base64"])))
        assert png.size == (64, 64)
        assert read_params(png)["prompt"] == PROMPT and image["parameters"]["sampler"] == "euler"
        assert image["parameters"]["steps"] == 4 and image["parameters"]["loras"] == {}

    status, headers, raw = call(server, "/api/v1/generate", {"prompt": PROMPT, "steps": 2, "format": "png"})
    assert status == 200 and headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(raw)).size == (64, 64)
    assert json.loads(headers["x-generation-parameters"])["steps"] == 2


@pytest.mark.parametrize(
    ("path", "body", "code", "field", "words"),
    [
        ("/api/v1/generate", {"prompt": PROMPT, "stpes": 4}, 422, "stpes", "Extra inputs"),
        ("/api/v1/generate", {"prompt": PROMPT, "steps": "many"}, 422, "steps", "integer"),
        ("/api/v1/generate", {"steps": 4}, 422, "prompt", "required"),
        ("/api/v1/generate", {"prompt": PROMPT, "steps": 0}, 400, None, "steps must be between 1 and 200"),
        ("/api/v1/generate", {"prompt": PROMPT, "count": 2, "format": "png"}, 400, None, "count"),
        ("/api/v1/generate", {"prompt": PROMPT, "loras": {"../../../etc/passwd": 1}}, 400, None, "data folder"),
        ("/api/v1/train", {"preset": "/etc/hosts", "dataset": "x"}, 400, None, "no preset"),
        ("/api/v1/train", {"preset": "lora-pocket", "dataset": "../x"}, 400, None, "dataset"),
        ("/api/v1/runs/nope", None, 404, None, "no run 'nope'"),
    ],
)
def test_bad_input_gets_a_4xx_that_says_what_is_wrong(server, path, body, code, field, words) -> None:
    status, _, raw = call(server, path, body)
    answer = json.loads(raw)
    assert status == code, answer
    assert answer.get("field") == field and words in answer["message"]
    assert ErrorBody.model_validate(answer).error in ("invalid", "not_found")  # the documented shape


def test_not_json_is_a_422(server) -> None:
    status, _, raw = call(server, "/api/v1/generate", raw=b"{prompt:")
    assert status == 422 and json.loads(raw)["error"] == "invalid"


def test_overload_is_answered_busy_and_the_server_keeps_answering(server) -> None:
    """Six requests at once against 1 running + 1 waiting: at most two are served, the rest refused with 503."""
    body = {"prompt": PROMPT, "steps": 25, "width": 64, "height": 64}
    answers: list[tuple[int, dict, bytes]] = []
    start = threading.Barrier(6)

    def fire() -> None:
        start.wait()
        answers.append(call(server, "/api/v1/generate", body))

    threads = [threading.Thread(target=fire) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    codes = sorted(status for status, _, _ in answers)
    assert len(codes) == 6 and set(codes) <= {200, 503}, codes
    # 1 running + 1 waiting: one or two served, so (six answers, each 200 or 503) four or more refused
    assert 1 <= codes.count(200) <= 2, codes
    for status, headers, raw in answers:
        if status == 503:
            assert json.loads(raw)["error"] == "busy" and int(headers["retry-after"]) >= 1
    assert json.loads(call(server, "/api/v1/health")[2])["generation"]["running"] == 0
    assert call(server, "/api/v1/generate", {"prompt": PROMPT, "steps": 2})[0] == 200


@pytest.mark.slow
def test_caption_and_train_then_follow_the_run_over_both_apis(server, shape_files) -> None:
    """Caption with gradio_client, start a 2-step run over REST (a second is refused), follow it with run_status;
    generate through gradio_client meanwhile."""
    from gradio_client import Client

    from studio.ui import dataset_tab
    from studio.workspace import Workspace

    dataset_tab.import_files(Workspace(server["data_dir"]), "shapes", shape_files, 64, "zq")
    client = Client(server["url"] + "/", verbose=False)
    assert client.predict("shapes", "pocket", False, api_name="/caption").startswith("5 captioned")
    settings = {"steps": 2, "sample_every": 2, "sample_steps": 3, "checkpoint_every": 2}
    status, _, raw = call(server, "/api/v1/train", {"preset": "lora-pocket", "dataset": "shapes", "settings": settings})
    assert status == 202, raw
    run_id = json.loads(raw)["run_id"]
    status, headers, raw = call(server, "/api/v1/train", {"preset": "lora-pocket", "dataset": "shapes"})
    assert status == 503 and json.loads(raw)["error"] == "busy" and "retry-after" in headers
    with pytest.raises(Exception, match="one training job at a time"):
        client.predict("shapes", "lora-pocket", settings, api_name="/train")

    files, params = client.predict(prompt=PROMPT, steps=3, seed=7, width=64, height=64, api_name="/generate")
    assert len(files) == 1 and Image.open(files[0]).size == (64, 64) and params[0]["seed"] == 7

    deadline = time.time() + 120
    while time.time() < deadline:
        state = client.predict(run_id, api_name="/run_status")
        if state["status"] not in ("created", "running"):
            break
        time.sleep(1)
    assert state["status"] == "finished" and state["last_step"] == 2, state
    assert state["samples"] == 2 and state["checkpoints"] == [2]  # the preset samples two prompts at step 2
    rest_state = json.loads(call(server, f"/api/v1/runs/{run_id}")[2])
    assert rest_state == state and isinstance(rest_state["last_loss"], float)
    assert [run["run_id"] for run in json.loads(call(server, "/api/v1/runs")[2])["runs"]] == [run_id]
    assert [run["run_id"] for run in client.predict(api_name="/list_runs")] == [run_id]
