"""A person uploads two LoRAs, stacks them with two weights, generates, saves the mix as one LoRA, sends the settings
to Compare and gets a grid."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from studio.generate.png_metadata import read_params
from studio.paths import POCKET_MODEL_DIR

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pocket_loras(tmp_path_factory) -> list[Path]:
    sys.path.insert(0, str(Path(__file__).parent.parent / "generate"))
    from lora_factory import write_lora

    folder = tmp_path_factory.mktemp("pocket-loras")
    files = []
    for seed, name in ((1, "bold.safetensors"), (2, "soft.safetensors")):
        diffusers_file, _ = write_lora(POCKET_MODEL_DIR, folder / name.split(".")[0], seed=seed)
        files.append(diffusers_file.rename(folder / name))
    return files


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _set_slider(page, elem_id: str, value: str) -> None:
    """Type into a slider's number box until its range handle agrees: a slider that mounts as its accordion opens
    can take its initial value back after an early fill, which a person never sees."""
    box, handle = page.locator(f"#{elem_id} input[type=number]"), page.locator(f"#{elem_id} input[type=range]")
    for _ in range(3):
        box.fill(value)
        box.press("Tab")
        try:
            expect(handle).to_have_value(value, timeout=2_000)
            return
        except AssertionError:
            continue
    expect(handle).to_have_value(value)


def test_two_stacked_loras_make_an_image_and_the_compare_grid_appears(page, studio_server, pocket_loras, tmp_path):
    page.get_by_text("Diffusion Studio").first.wait_for()
    _open_tab(page, "Playground")
    page.locator("#pg-steps input[type=number]").fill("8")
    page.locator("#pg-count input[type=number]").fill("1")
    for index, file in enumerate(pocket_loras):
        page.locator("#pg-lora-upload input[type=file]").set_input_files(str(file))
        page.wait_for_function(
            f"document.querySelector('#pg-lora-{index} input').value.includes('{file.stem}')", timeout=30_000
        )
    _set_slider(page, "pg-weight-0", "0.8")
    _set_slider(page, "pg-weight-1", "-0.5")
    # an expert's per-block weight: the second LoRA only on the up blocks
    page.get_by_text("Per-block weights (experts)").click()
    for block in ("down", "mid"):
        _set_slider(page, f"pg-block-1-{block}", "0")
    earlier = set((studio_server["data_dir"] / "outputs").glob("*.png"))  # other page tests share the server
    page.locator("#pg-generate").click()
    page.locator("#pg-status").get_by_text("2 LoRA(s) on").wait_for(timeout=90_000)
    assert page.locator("#pg-gallery img").count() == 1
    page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)

    saved = sorted(set((studio_server["data_dir"] / "outputs").glob("*.png")) - earlier)
    assert len(saved) == 1
    params = read_params(saved[-1])
    assert [(Path(lora["path"]).name, lora["weight"]) for lora in params["loras"]] == [
        ("bold.safetensors", 0.8),
        ("soft.safetensors", -0.5),
    ]
    assert params["loras"][0].get("blocks") is None
    assert params["loras"][1]["blocks"] == {"down": 0.0, "mid": 0.0, "up": 1.0}

    # dropping one of our PNGs back in restores its settings, LoRA weights included
    page.locator("#pg-prompt textarea").fill("something else")
    page.locator("#pg-weight-1 input[type=number]").fill("1.5")
    page.locator("#pg-block-1-down input[type=number]").fill("2")
    page.locator("#pg-restore input[type=file]").set_input_files(str(saved[-1]))
    page.locator("#pg-status").get_by_text("Restored the settings").wait_for(timeout=30_000)
    assert page.locator("#pg-prompt textarea").input_value() == params["prompt"]
    assert page.locator("#pg-weight-1 input[type=number]").input_value() == "-0.5"
    assert page.locator("#pg-block-1-down input[type=number]").input_value() == "0"

    # the two, at these weights, saved as one LoRA: listed in the slots and offered for download
    page.locator("#pg-mix-name textarea, #pg-mix-name input").first.fill("bold and soft")
    page.locator("#pg-save-mix").click()
    page.locator("#pg-mix-message").get_by_text("Saved the mix (bold 0.8, soft -0.5)").wait_for(timeout=60_000)
    page.locator("#pg-mix-file a[download='bold-and-soft.safetensors']").wait_for(timeout=10_000)
    from safetensors import safe_open

    with safe_open(str(studio_server["data_dir"] / "loras" / "bold-and-soft.safetensors"), "pt") as mix:
        sources = json.loads(mix.metadata()["studio_mix"])["loras"]
        assert any(key.startswith("lora_unet_") for key in mix.keys())
    assert [(Path(s["path"]).name, s["weight"], s["blocks"]) for s in sources] == [
        ("bold.safetensors", 0.8, None),
        ("soft.safetensors", -0.5, {"down": 0.0, "mid": 0.0, "up": 1.0}),
    ]
    page.screenshot(path=str(tmp_path / "playground-mix.png"), full_page=True)

    page.locator("#pg-send").click()
    _open_tab(page, "Compare")
    page.wait_for_function("document.querySelector('#cmp-adapters').innerText.includes('soft')")
    page.locator("#cmp-x-values textarea, #cmp-x-values input").first.fill("2, 6")
    page.locator("#cmp-render").click()
    page.locator("#cmp-status").get_by_text("images in").wait_for(timeout=120_000)
    page.locator("#cmp-grid img").wait_for()
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    grids = sorted((studio_server["data_dir"] / "outputs" / "grids").glob("grid-*.png"))
    assert grids
    grid = read_params(grids[-1])["grid"]
    assert grid["x"]["values"] == [2.0, 6.0] and grid["y"]["kind"] == "sampler"
