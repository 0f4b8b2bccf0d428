"""The studio driven as an API through gradio_client: caption a dataset, train on it, generate."""

from __future__ import annotations

import socket
import time

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def served(workspace, monkeypatch):
    from studio.ui import app as studio_app
    from studio.ui import generate_tab
    from studio.workspace import Workspaces

    workspaces = Workspaces(workspace.data_dir)
    monkeypatch.setattr(generate_tab, "DATA_DIR", workspace.data_dir)
    blocks = studio_app.build_app(workspaces=workspaces).queue(default_concurrency_limit=1)
    port = _free_port()
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", workspaces.get()
    blocks.close()


def test_caption_train_and_generate_through_the_client(served, shape_files):
    from gradio_client import Client

    from studio.ui import dataset_tab

    url, workspace = served
    dataset_tab.import_files(workspace, "shapes", shape_files, 64, "zq")
    client = Client(url, verbose=False)

    message = client.predict("shapes", "pocket", False, api_name="/caption")
    assert message.startswith("5 captioned")

    settings = {"steps": 6, "sample_every": 3, "checkpoint_every": 3, "sample_steps": 5}
    started = client.predict("shapes", "lora-pocket", settings, api_name="/train")
    with pytest.raises(Exception, match="one training job at a time"):
        client.predict("shapes", "lora-pocket", settings, api_name="/train")
    deadline = time.time() + 120
    while time.time() < deadline:
        status = client.predict(started["run_id"], api_name="/run_status")
        if status["status"] not in ("created", "running"):
            break
        time.sleep(1)
    assert status["status"] == "finished", status
    assert status["last_step"] == 6 and status["samples"] == 2 and status["checkpoints"] == [3, 6]

    images, note, params = client.predict(
        "a red circle on a black background", "", "default", 10, 6.0, 1, 0, "pocket", api_name="/generate"
    )
    assert len(images) == 1 and params["prompt"] == "a red circle on a black background"
    assert "1 image(s)" in note
