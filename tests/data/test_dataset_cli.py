"""`studio dataset ...` end to end: import, check, caption, edit, prepare, with readable and JSON reports."""

from __future__ import annotations

import json
import subprocess
import sys

from studio.cli import main


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_import_check_caption_edit_prepare(upload_zip, tmp_path, capsys, tiny_tokenizer):
    tokenizer = tmp_path / "tokenizer"
    tiny_tokenizer.save_pretrained(tokenizer)
    root = ["--root", str(tmp_path / "datasets")]
    length = ["--tokenizer", str(tokenizer), "--ti", "<sks>=4"]

    assert main(["dataset", "import", str(upload_zip), "--name", "dogs", "--resolution", "64", *root, *length]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dataset dogs (") and "5 accepted, 5 rejected" in out
    assert "x upload.zip:../escape.png: zip-path-escape - refused: its path climbs out" in out

    assert main(["dataset", "check", "dogs", "--json", *root, *length]) == 0
    report = _json(capsys)
    assert report["images"] == 5 and report["rejected_at_import"] == 5
    assert report["counts"] == {"caption-empty": 1}  # the image outside any caption source
    assert report["balance"]["concepts"]["sks dog"] == {"role": "instance", "images": 2, "samples": 20}

    assert main(["dataset", "caption", "dogs", "--trigger", "sks", "--json", *root]) == 0
    assert len(_json(capsys)["captioned"]) == 1
    assert main(["dataset", "edit", "dogs", "--find", "background", "--replace", "backdrop", *root]) == 0
    assert "find-replace: 5 caption(s) changed" in capsys.readouterr().out
    assert main(["dataset", "check", "dogs", *root]) == 1  # the sidecar captions of the dogs lack the trigger
    assert "trigger-missing" in capsys.readouterr().out
    assert main(["dataset", "edit", "dogs", "--trigger", "sks", "--json", *root]) == 0
    assert _json(capsys) == {"changed": {"trigger": 2}}

    assert main(["dataset", "prepare", "dogs", "--resolution", "64", "--mode", "buckets", "--json", *root]) == 0
    prepared = _json(capsys)
    assert prepared["buckets"] == {"64x64": 5} and len(prepared["fingerprint"]) == 64
    assert main(["dataset", "list", *root]) == 0
    assert capsys.readouterr().out == "dogs: 5 images\n"


def test_the_engine_minus_two_captioners_imports_without_torch():
    # the UI imports no torch; it must be able to use import, captions, check and prepare
    code = (
        "import sys, studio.data.importer, studio.data.captions, studio.data.check, studio.data.prepare, "
        "studio.data.captioners, studio.cli.dataset; print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["dataset", "import", str(tmp_path / "nope"), "--name", "x", "--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith("does not exist")
    assert main(["dataset", "check", "../etc", "--root", str(tmp_path)]) == 2
    assert "dataset name" in capsys.readouterr().err
    assert main(["dataset", "caption", "missing", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "manifest.json is missing" in err and len(err.strip().splitlines()) == 1
