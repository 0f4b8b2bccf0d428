"""Which LoRA of a stack a grid's weight and checkpoint axes act on, and how the Compare tab names runs and files."""

from __future__ import annotations

import pytest

from studio.generate import library
from studio.generate.grid import NO_LORA, Axis

STACK = {"loras": [{"path": "a.safetensors", "weight": 0.5}, {"path": "b.safetensors", "weight": 0.8}]}


def test_the_weight_axis_scales_the_chosen_lora_only() -> None:
    axis = Axis("lora_weight", (0.0, 1.5), target=1)
    assert [lora["weight"] for lora in axis.apply(STACK, 1)["loras"]] == [0.5, 1.5]
    assert [lora["weight"] for lora in Axis("lora_weight", (2.0,)).apply(STACK, 0)["loras"]] == [2.0, 0.8]
    with pytest.raises(ValueError, match="needs a LoRA"):
        Axis("lora_weight", (1.0,), target=2).apply(STACK, 0)


def test_the_checkpoint_axis_replaces_the_chosen_lora_keeping_its_weight_or_adds_one() -> None:
    replaced = Axis("checkpoint", ("c1",), target=1).apply(STACK, 0)["loras"]
    assert [(lora["path"], lora["weight"]) for lora in replaced] == [("a.safetensors", 0.5), ("c1", 0.8)]
    added = Axis("checkpoint", ("c1",), target=2).apply(STACK, 0)["loras"]
    assert [lora["path"] for lora in added] == ["a.safetensors", "b.safetensors", "c1"]
    without = Axis("checkpoint", (NO_LORA,), target=0).apply(STACK, 0)["loras"]
    assert [lora["path"] for lora in without] == ["b.safetensors"]
    assert STACK["loras"][0] == {"path": "a.safetensors", "weight": 0.5}  # the base settings are not changed


@pytest.fixture()
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    run = tmp_path / "data" / "runs" / "20261206-090000-lora-ab12"
    (run / "checkpoints" / "step-000200").mkdir(parents=True)
    (run / "config.yaml").write_text("method: lora\n", encoding="utf-8")
    return tmp_path / "data"


def test_a_run_is_found_by_id_by_runs_slash_id_or_by_its_folder(data) -> None:
    run = (data / "runs" / "20261206-090000-lora-ab12").resolve()
    for text in ("20261206-090000-lora-ab12", "runs/20261206-090000-lora-ab12", str(run), f"{run}/"):
        assert library.find_run(text) == run
    with pytest.raises(ValueError, match="there is no run 'nope'"):
        library.find_run("nope")
    with pytest.raises(ValueError, match="pick a run"):
        library.find_run("")


def test_adapters_are_named_as_the_lists_name_them(data) -> None:
    from studio.runs.names import run_label

    run = data / "runs" / "20261206-090000-lora-ab12"
    assert library.adapter_label(run / "checkpoints" / "step-000200") == f"{run_label(run)} step 200"
    assert library.adapter_label(run / "outputs" / "lora-kohya.safetensors") == f"{run_label(run)} (kohya)"
    assert library.adapter_label(data / "loras" / "soft.safetensors") == "soft"
