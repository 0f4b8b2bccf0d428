"""Public mode: every visitor their own workspace (datasets, runs, files), within caps; idle workspaces go."""

from __future__ import annotations

import os
import re
import sys
import time
import zipfile
from pathlib import Path

import pytest

from studio import runs
from studio.train import jobs
from studio.train.config import resolve_config
from studio.ui import dataset_tab, runs_tab, train_tab
from studio.workspace import LAST_SEEN, PublicLimits, PublicWorkspaces

ALICE, BOB = "a" * 32, "b" * 32


@pytest.fixture()
def session():
    """The session hash of 'the request being handled', as Gradio's context would give it."""
    return {"hash": None}


@pytest.fixture()
def public(tmp_path, session):
    workspaces = PublicWorkspaces(
        tmp_path / "data",
        PublicLimits(max_images=6),
        current_session=lambda: session["hash"],
        served_root=tmp_path / "served",
    )
    workspaces.BIND_WAIT = 0.5
    return workspaces


def _run_of(workspace, run_id="r1", status_event=None):
    config = resolve_config(preset="lora-pocket")
    source = str(workspace.dataset_path("shapes"))
    folder = runs.create_run_folder(config.to_yaml(), {"source": source, "items": []}, run_id, workspace.runs_root)
    if status_event:
        runs.append_event(folder, *status_event[:1], **status_event[1])
    return folder


def test_two_visitors_never_see_each_others_datasets_runs_or_files(public, shape_files):
    alice, bob = public.get(ALICE), public.get(BOB)
    dataset_tab.import_files(alice, "shapes", shape_files, 64, "zq")
    run = _run_of(alice)
    assert [name for name, _ in alice.training_sources()] == ["shapes"]
    assert run_id_list(alice) == ["r1"]

    assert bob.training_sources() == [] and runs_tab.summaries(bob) == []
    assert train_tab.shown_run(bob) is None
    for name in ("shapes", f"../../{ALICE}/datasets/shapes", f"../{ALICE}", "/" + str(alice.dataset_path("shapes"))):
        with pytest.raises(ValueError):
            bob.training_source(name)
    for run_id in ("r1", f"../../{ALICE}/runs/r1", str(run)):
        with pytest.raises(ValueError):
            bob.run_path(run_id)
    with pytest.raises(FileNotFoundError):
        dataset_tab.auto_caption(bob, "shapes", "pocket", False)
    # the folders themselves are apart, each under visitors/<id>
    assert alice.data_dir.parent == bob.data_dir.parent == public.root
    assert not bob.data_dir.joinpath("datasets").exists()


def run_id_list(workspace) -> list[str]:
    return [s.run_id for s in runs_tab.summaries(workspace)]


def test_a_request_finds_its_visitor_through_its_session(public, session):
    public.bind("page-1", ALICE)
    session["hash"] = "page-1"
    assert public.get() is public.get(ALICE)
    # a click that comes before the page's first event has bound the session waits for it
    import threading

    threading.Timer(0.2, public.bind, ("page-2", BOB)).start()
    session["hash"] = "page-2"
    assert public.get() is public.get(BOB)
    session["hash"] = "api-client"  # never bound (gradio_client): a workspace of its own, stable for the session
    assert public.get() is public.get() and public.get().data_dir.name not in (ALICE, BOB)
    session["hash"] = None
    with pytest.raises(ValueError, match="reload the page"):
        public.get()
    for bad in ("../" + ALICE[3:], ALICE.upper(), ALICE + "0", "", None, 5):
        assert not public.is_visitor(bad)
    with pytest.raises(ValueError):
        public.bind("page-2", "../etc")
    assert public.is_visitor(public.new_visitor()) and public.new_visitor() != public.new_visitor()


def test_caps_on_images_bytes_steps_models_and_captioners(tmp_path, shape_files):
    public = PublicWorkspaces(tmp_path / "data", PublicLimits(max_images=6, max_workspace_bytes=200_000))
    ws = public.get(ALICE)
    dataset_tab.import_files(ws, "shapes", shape_files, 64, "zq")  # 5 images
    with pytest.raises(ValueError, match="at most 6 images"):
        dataset_tab.import_files(ws, "shapes", shape_files[:2], 64)
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in shape_files[:2]:
            z.write(file, os.path.basename(file))
    with pytest.raises(ValueError, match="at most 6 images"):
        dataset_tab.import_files(ws, "shapes", [str(archive)], 64)
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 300_000)
    with pytest.raises(ValueError, match="over its"):
        dataset_tab.import_files(ws, "other", [str(big)], 64)

    too_long = resolve_config(preset="lora-pocket", overrides={"steps": "5000"})
    with pytest.raises(ValueError, match="at most 400 steps"):
        train_tab.start_training(ws, too_long, "shapes")
    other_model = resolve_config(preset="lora-pocket", overrides={"base_model": "/etc"})
    with pytest.raises(ValueError, match="trains only pocket"):
        train_tab.start_training(ws, other_model, "shapes")
    for outside in ("/etc/passwd", f"{ws.data_dir}/../{BOB}/runs/x:0.5"):  # a server file, another visitor's run
        on_top = resolve_config(preset="lora-pocket", overrides={"base_loras": f"[{outside}]"})
        with pytest.raises(ValueError, match="merges only your own runs' LoRAs"):
            train_tab.start_training(ws, on_top, "shapes")
    own = resolve_config(preset="lora-pocket", overrides={"base_loras": f"[{ws.data_dir}/runs/mine:0.5]"})
    ws.check_training(own)  # the visitor's own run: allowed
    with pytest.raises(ValueError, match="captions with pocket or template only"):
        dataset_tab.auto_caption(ws, "shapes", "florence2", False)
    assert ws.runs_root.exists() is False  # nothing was started


def _fake_training(monkeypatch, code: str) -> None:
    monkeypatch.setattr(jobs, "training_command", lambda run_dir: [sys.executable, "-c", code, str(run_dir)])


def test_concurrent_runs_are_capped_across_visitors(public, shape_files, monkeypatch):
    _fake_training(monkeypatch, "import time; time.sleep(3)")
    alice, bob = public.get(ALICE), public.get(BOB)
    for ws in (alice, bob):
        dataset_tab.import_files(ws, "shapes", shape_files, 64, "zq")
        dataset_tab.auto_caption(ws, "shapes", "pocket", False)
    config = resolve_config(preset="lora-pocket", overrides={"steps": "40"})
    run = train_tab.start_training(alice, config, "shapes")
    with pytest.raises(jobs.JobBusy, match="for other visitors"):
        train_tab.start_training(bob, config, "shapes")
    alice.jobs.wait(run, timeout=30)
    train_tab.start_training(bob, config, "shapes")  # the slot is free again
    assert public.pool.active() == 1


def test_idle_workspaces_are_deleted_but_not_active_or_training_ones(public, session):
    idle, fresh, training = public.get(ALICE), public.get(BOB), public.get("c" * 32)
    for ws in (idle, fresh, training):
        (ws.datasets_root / "x").mkdir(parents=True)
    # a run training in a live process (this one) keeps its workspace however old
    _run_of(training, status_event=("started", {"step": 0, "total_steps": 1, "pid": os.getpid()}))
    long_ago = time.time() - 25 * 3600
    for ws in (idle, training):
        os.utime(ws.data_dir / LAST_SEEN, (long_ago, long_ago))
    public.bind("page", ALICE)
    assert public.cleanup() == [ALICE]
    assert not idle.data_dir.exists() and fresh.data_dir.exists() and training.data_dir.exists()
    session["hash"] = "page"  # the session of a deleted workspace no longer leads to it
    assert public.get().data_dir.name != ALICE
    removed = public.cleanup(now=time.time() + 48 * 3600)
    assert BOB in removed and "c" * 32 not in removed


@pytest.mark.slow
def test_an_api_client_is_a_visitor_of_its_own(tmp_path, shape_files, monkeypatch):
    """Through gradio_client: another visitor's dataset and run are not found; the client's own data is."""
    import socket

    from gradio_client import Client

    from studio.ui import app as studio_app
    from studio.ui import visitors

    public = visitors.public_workspaces(tmp_path / "data")
    alice = public.get(ALICE)
    dataset_tab.import_files(alice, "shapes", shape_files, 64, "zq")
    _run_of(alice)
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    blocks = studio_app.build_app(workspaces=public).queue(default_concurrency_limit=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        with pytest.raises(Exception, match="no dataset"):
            client.predict("shapes", "pocket", False, api_name="/caption")
        with pytest.raises(Exception, match="no run"):
            client.predict("r1", api_name="/run_status")
        with pytest.raises(Exception, match="no dataset"):
            client.predict("shapes", "lora-pocket", {"steps": 4}, api_name="/train")
        with pytest.raises(Exception, match="no preset"):  # a preset is a name, never a file path
            client.predict("shapes", "/etc/hosts.yaml", {}, api_name="/train")
        own = public.get(public.visitor_of(client.session_hash))
        assert own.data_dir != alice.data_dir
        dataset_tab.import_files(own, "shapes", shape_files, 64, "zq")
        assert client.predict("shapes", "pocket", False, api_name="/caption").startswith("5 captioned")
    finally:
        blocks.close()
    # Alice's captions were never touched by the client's captioning
    from studio.data.dataset import Dataset

    assert not any(Dataset.load(alice.dataset_path("shapes")).captions().values())


def test_public_app_has_no_shared_playground_and_generates_only_with_allowed_models(public, tmp_path) -> None:
    """Playground and Compare list every run and adapter in the data folder, so a public studio leaves them out;
    its Generate tab keeps the base model fixed (a visitor must not make the server load any path or hub id)."""
    from studio.ui.app import build_app
    from studio.workspace import Workspaces

    def tabs_and_model_box(workspaces):
        config = build_app(workspaces=workspaces).get_config_file()
        components = config["components"]
        tab_ids = {c["props"].get("id") for c in components if c["type"] == "tabitem"}
        model_box = next(c for c in components if c["props"].get("elem_id") == "gen-model")
        return tab_ids, model_box["props"].get("interactive")

    tabs, interactive = tabs_and_model_box(public)
    assert {"dataset", "train", "runs", "generate"} <= tabs and not tabs & {"playground", "compare"}
    assert interactive is False
    tabs, interactive = tabs_and_model_box(Workspaces(tmp_path / "private"))
    assert {"playground", "compare"} <= tabs and interactive is not False


# ------------------------------------------------------------------ files: never served by path (issue 22)


def test_a_public_studio_serves_no_folder_by_path_wherever_its_data_is() -> None:
    from studio.ui import visitors

    persistent = Path("/data")  # a Space's persistent disk: outside the working and temp folders
    assert visitors.served_paths(persistent, public=True) == []
    assert visitors.served_paths(Path.cwd() / "data", public=True) == []
    assert visitors.served_paths(persistent, public=False) == [str(persistent.resolve())]


def test_the_page_is_handed_copies_outside_the_data_folder_under_unguessable_names(public, shape_files, tmp_path):
    from studio.data.dataset import Dataset
    from studio.ui.run_view import gallery_items

    alice = public.get(ALICE)
    dataset_tab.import_files(alice, "shapes", shape_files, 64, "zq")
    dataset = Dataset.load(alice.dataset_path("shapes"))
    shown = [Path(path) for path, _ in dataset_tab.thumbnails(dataset, public.served_copy)]
    assert len(shown) == 5
    for path, item in zip(shown, dataset.items):
        assert path.is_relative_to(public.served_root) and not path.is_relative_to(tmp_path / "data")
        assert path.name == item.file and path.read_bytes() == (dataset.images_dir / item.file).read_bytes()
        assert re.fullmatch(r"[0-9a-f]{32}", path.parent.name) and ALICE not in str(path)
    assert [Path(p) for p, _ in dataset_tab.thumbnails(dataset, public.served_copy)] == shown  # one copy a version

    run = _run_of(alice)
    sample = run / "samples" / "step-000010-0.png"
    sample.write_bytes((dataset.images_dir / dataset.items[0].file).read_bytes())
    runs.append_event(run, "sample", step=10, path="samples/step-000010-0.png", prompt="a zq")
    summary = runs_tab.summaries(alice)[0]
    for path in [p for p, _ in gallery_items(summary, public.served_copy)] + [
        p for p, _ in runs_tab.final_samples([summary], public.served_copy)
    ]:
        assert Path(path).is_relative_to(public.served_root)

    assert public.clean_served(now=time.time() + 2 * 3600) >= 5 and not any(public.served_root.iterdir())


def test_each_visitor_generates_into_their_own_workspace_and_nothing_is_overwritten(public, session, tmp_path):
    from PIL import Image

    from studio.generate.engine import GeneratedImage
    from studio.ui.gallery import saved_for_page

    results = [GeneratedImage(Image.new("RGB", (8, 8), "red"), {"seed": 0, "prompt": "a red square"})]
    public.bind("alice-page", ALICE)
    public.bind("bob-page", BOB)
    session["hash"] = "alice-page"
    handed = saved_for_page(public, results) + saved_for_page(public, results)  # the same second, the same seed
    session["hash"] = "bob-page"
    handed += saved_for_page(public, results)

    alice_outputs = sorted((public.get(ALICE).data_dir / "outputs").iterdir())
    assert len(alice_outputs) == 2  # two saves, two files: no overwrite
    for path in alice_outputs:  # time, index and seed, then 48 random bits: not guessable from the time and seed
        assert re.fullmatch(r"\d{8}-\d{6}-00-seed0-[0-9a-f]{12}\.png", path.name)
    assert len(list((public.get(BOB).data_dir / "outputs").iterdir())) == 1
    assert not (tmp_path / "data" / "outputs").exists()  # no folder shared by every visitor
    assert all(Path(path).is_relative_to(public.served_root) for path in handed)

    bob = public.get(BOB)
    with open(bob.data_dir / "big.bin", "wb") as big:  # sparse: its size counts, no disk is used
        big.truncate(public.limits.max_workspace_bytes + 1)
    with pytest.raises(ValueError, match="your workspace is full"):
        bob.check_room()  # what Generate and the generate endpoint ask before they store more


@pytest.mark.slow
def test_no_visitor_file_is_served_by_url_with_the_data_folder_outside_working_and_temp(
    tmp_path, shape_files, monkeypatch
):
    """A real server (no browser): the data folder outside the working and temp folders, as a Space's persistent
    /data. A visitor's image, their metadata.jsonl and the images a client generated answer 403 by path, while the
    client still receives its images (through Gradio's cache)."""
    import socket
    import tempfile
    import urllib.error
    import urllib.request

    from gradio_client import Client

    from studio.ui import app as studio_app
    from studio.ui import visitors

    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    data = tmp_path / "persistent" / "data"
    assert not data.is_relative_to(Path.cwd()) and not data.is_relative_to(tempfile.gettempdir())
    public = visitors.public_workspaces(data)
    alice = public.get(ALICE)
    dataset_tab.import_files(alice, "shapes", shape_files, 64, "zq")
    images = alice.dataset_path("shapes") / "images"
    blocks = studio_app.build_app(workspaces=public).queue(default_concurrency_limit=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    blocks.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        allowed_paths=visitors.served_paths(data, public=True),
    )
    url = f"http://127.0.0.1:{port}"

    def status_of(path: Path) -> int:
        try:
            with urllib.request.urlopen(f"{url}/gradio_api/file={path}", timeout=30) as answer:
                return answer.status
        except urllib.error.HTTPError as answer:
            return answer.code

    try:
        for path in (next(images.glob("*.png")), images / "metadata.jsonl"):
            assert path.is_file() and status_of(path) == 403, path
        client = Client(f"{url}/", verbose=False)
        files, params = client.predict(
            prompt="a red circle on a black background", steps=1, width=64, height=64, count=2, api_name="/generate"
        )
        own = public.get(public.visitor_of(client.session_hash))
        saved = sorted((own.data_dir / "outputs").glob("*.png"))
        assert len(files) == 2 and len(saved) == 2 and own.data_dir != alice.data_dir
        assert sorted(Path(f).read_bytes() for f in files) == sorted(p.read_bytes() for p in saved)
        assert all(status_of(path) == 403 for path in saved)
    finally:
        blocks.close()
