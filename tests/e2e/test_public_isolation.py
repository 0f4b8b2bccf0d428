"""Public isolation that does not depend on where the data folder is. The studio runs in public mode with its data
folder outside the working folder and the system's temp folder (as a Space's persistent /data), where Gradio would
serve nothing by default but an `allowed_paths` entry would serve everything. Two real browser profiles: visitor A
imports an image and generates; A sees its thumbnails and images, while visitor B and a client with no session get
none of A's files, by the paths they have on disk, by their served copies, or by A's own URLs in B's page."""

from __future__ import annotations

import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from studio_server import free_port, serve

from studio.paths import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def outside_folder() -> Path | None:
    """A new folder outside the working folder (the repository) and the system's temp folder."""
    temp = Path(tempfile.gettempdir()).resolve()
    for parent in (Path("/var/tmp"), Path.home()):
        parent = parent.resolve()
        if parent.is_relative_to(temp) or parent.is_relative_to(PROJECT_ROOT.resolve()) or not parent.is_dir():
            continue
        try:
            return Path(tempfile.mkdtemp(prefix="studio-e2e-data-", dir=parent))
        except OSError:
            continue
    return None


@pytest.fixture(scope="module")
def outside_server():
    """The public studio, its data folder outside, its temp folder (Gradio's cache, the served copies) one of its
    own, so that the test finds this server's served copies and leaves nothing behind."""
    folder = outside_folder()
    if folder is None:
        pytest.skip("no writable folder outside the working and temp folders (/var/tmp, $HOME)")
    temp = Path(tempfile.mkdtemp(prefix="studio-e2e-temp-"))
    try:
        port = free_port()
        for server in serve(folder, ["app.py", "--public"], port, env={"PORT": str(port), "TMPDIR": str(temp)}):
            yield server | {"temp_dir": temp}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)


def status_without_session(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as answer:
        return answer.code


def image_sources(page, selector: str) -> list[str]:
    return [src for src in page.locator(f"{selector} img").evaluate_all("els => els.map(e => e.src)") if src]


def test_a_visitors_files_reach_that_visitor_alone(browser, outside_server, tmp_path) -> None:
    from studio.pocket.world import Scene, render

    url, data_dir, temp = outside_server["url"], outside_server["data_dir"].resolve(), outside_server["temp_dir"]
    for folder in (Path(tempfile.gettempdir()), temp, PROJECT_ROOT):
        assert not data_dir.is_relative_to(folder.resolve())
    image = tmp_path / "circle.png"
    render(Scene("circle", "red", "black"), 64).save(image)
    alice_context = browser.new_context(viewport={"width": 1280, "height": 900})
    bob_context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        alice, bob = alice_context.new_page(), bob_context.new_page()
        alice.goto(url)
        bob.goto(url)

        # A imports an image into a new dataset, and generates one image
        alice.get_by_role("tab", name="Dataset").click()
        alice.locator("#ds-name textarea, #ds-name input").first.fill("alices-shapes")
        alice.locator("#ds-upload input[type=file]").set_input_files([str(image)])
        alice.locator("#ds-upload").get_by_text("circle").wait_for(timeout=30_000)
        alice.locator("#ds-import").click()
        alice.locator("#ds-message").get_by_text("1 accepted").wait_for(timeout=60_000)
        alice.locator("#ds-gallery img").first.wait_for(timeout=30_000)
        thumbnails = image_sources(alice, "#ds-gallery")
        alice.get_by_role("tab", name="Generate").click()
        alice.get_by_label("number input for Images").fill("1")
        alice.get_by_label("number input for Steps").fill("4")
        alice.get_by_label("number input for Steps").press("Tab")
        alice.locator("#gen-button").click()
        alice.locator("#gen-status").get_by_text("image(s) in").wait_for(timeout=90_000)
        generated = image_sources(alice, "#gen-gallery")
        assert thumbnails and generated

        [workspace] = [v for v in (data_dir / "visitors").iterdir() if (v / "datasets").is_dir()]
        on_disk = [p for p in workspace.rglob("*") if p.is_file()]
        names = {p.name for p in on_disk}
        assert {"circle.png", "metadata.jsonl", "manifest.json"} <= names, names
        assert len(list((workspace / "outputs").glob("*.png"))) == 1
        # the copies handed to Gradio (PublicWorkspaces.served_copy), in the server's temp folder
        served = [p for p in temp.glob("studio-served-*/*/*") if p.name in names]
        assert served, "no served copy found"

        # A sees its own images: the page's URLs answer, and name neither the data folder nor the visitor
        for src in thumbnails + generated:
            answer = alice_context.request.get(src)
            assert answer.status == 200 and answer.body().startswith(b"\x89PNG"), src
            assert str(data_dir) not in unquote(src) and workspace.name not in src

        # nobody gets them by path: the data folder's files, the served copies, the workspace folder itself
        wanted = [*on_disk, *served, workspace, data_dir]
        relative = [Path("../" * len(PROJECT_ROOT.resolve().parts)) / p.relative_to("/") for p in on_disk]
        for path in [*wanted, *relative]:
            for route in ("/gradio_api/file=", "/file=", "/gradio_api/file/"):
                target = url + route + quote(str(path))
                assert bob_context.request.get(target).status in (403, 404), target
                assert status_without_session(target) in (403, 404), target

        # and B's page shows none of them: no dataset of A's, no image of A's
        bob.reload()
        bob.get_by_role("tab", name="Dataset").click()
        bob.locator("#ds-pick input").click()
        assert "alices-shapes" not in bob.get_by_role("option").all_inner_texts()
        bob.keyboard.press("Escape")
        bob.get_by_role("tab", name="Generate").click()
        shown_to_bob = set(image_sources(bob, "body"))
        assert not shown_to_bob & set(thumbnails + generated)
    finally:
        alice_context.close()
        bob_context.close()
    log = (data_dir / "server.log").read_text()
    assert "Traceback" not in log, log[-3000:]


def test_expected_refusals_leave_one_line_at_most_in_the_log(outside_server) -> None:
    """A prompt over the cap, bad settings, a LoRA or preset outside the data folder, a file outside it: each is
    answered with its sentence and leaves no traceback in the public server's log (Gradio printed one per gr.Error)."""
    import json

    from gradio_client import Client

    url, log_file = outside_server["url"], outside_server["data_dir"] / "server.log"
    before = log_file.stat().st_size

    def rest(body: dict) -> int:
        request = urllib.request.Request(
            url + "/api/v1/generate", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status
        except urllib.error.HTTPError as answer:
            return answer.code

    assert rest({"prompt": "x" * 3000}) == 400
    assert rest({"prompt": "a circle", "steps": "many"}) == 422
    assert rest({"prompt": "a circle", "loras": {"../../etc/passwd": 1}}) == 403
    assert status_without_session(url + "/gradio_api/file=/etc/passwd") == 403
    client = Client(url + "/", verbose=False)
    refused = 0
    for api_name, args, kwargs in [
        ("/generate", (), {"prompt": "x" * 3000}),
        ("/generate", (), {"prompt": "a circle", "loras": {"/etc/passwd": 1.0}}),
        ("/generate", (), {"prompt": "a circle", "steps": 100_000}),
        ("/train", ("nothing", "lora-pocket", {"steps": 100_000}), {}),
        ("/train", ("nothing", "/etc/hosts"), {}),
        ("/run_status", ("../x",), {}),
    ]:
        with pytest.raises(Exception) as answer:
            client.predict(*args, api_name=api_name, **kwargs)
        assert "Something went wrong" not in str(answer.value), answer.value  # each one is a refusal with its reason
        refused += 1
    time.sleep(1)  # the server writes its log as it answers; let the last line land
    written = log_file.read_text()[before:]
    assert "Traceback" not in written, written[-3000:]
    assert len(written.splitlines()) <= refused, written
