import subprocess
import sys

from PIL import Image

from studio.cli import main
from studio.pocket.evaluator import judge


def test_python_dash_m_studio_lists_the_subcommands():
    result = subprocess.run([sys.executable, "-m", "studio", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for command in ("generate", "pocket", "ui"):
        assert command in result.stdout


def test_pocket_world_writes_images_with_matching_captions(tmp_path):
    out = tmp_path / "stars"
    assert main(["pocket", "world", "--out", str(out), "--shape", "star", "--count", "5", "--size", "128"]) == 0
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 5
    for png in pngs:
        caption = png.with_suffix(".txt").read_text().strip()
        verdict = judge(Image.open(png))
        assert Image.open(png).size == (128, 128)
        assert caption == f"a {verdict.color} star on a {verdict.background} background"


def test_bad_input_is_one_clear_line_and_exit_code_2(tmp_path, capsys):
    code = main(["pocket", "world", "--out", str(tmp_path), "--color", "black", "--background", "black"])
    assert code == 2
    err = capsys.readouterr().err
    assert "differs from the background" in err and "Traceback" not in err
