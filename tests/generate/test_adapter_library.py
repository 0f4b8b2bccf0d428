"""What the playground may list and load: runs' exports and uploads inside the data folder, nothing else."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from studio.generate import library


@pytest.fixture()
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


def test_uploads_are_copied_in_under_safe_names_and_listed(data, tmp_path) -> None:
    source = tmp_path / "my lora (v2).safetensors"
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(1)}, str(source))
    first = library.import_upload(source, "loras")
    second = library.import_upload(source, "loras")
    assert first.parent == data / "loras" and first.name == "my-lora-v2.safetensors"
    assert second.name == "my-lora-v2-2.safetensors"
    assert sorted(c.path for c in library.list_loras()) == sorted([str(first), str(second)])


def test_pickle_and_broken_uploads_are_refused(data, tmp_path) -> None:
    torch.save({"x": torch.zeros(1)}, tmp_path / "lora.bin")
    with pytest.raises(ValueError, match="only .safetensors"):
        library.import_upload(tmp_path / "lora.bin", "embeddings")
    (tmp_path / "fake.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(Exception):  # noqa: B017 - safetensors' own error type
        library.import_upload(tmp_path / "fake.safetensors", "loras")
    assert not (data / "loras").exists() or not list((data / "loras").iterdir())


def test_paths_outside_the_data_folder_are_refused(data, tmp_path) -> None:
    inside = data / "loras" / "a.safetensors"
    assert library.inside_data(inside) == inside.resolve()
    for outside in (tmp_path / "elsewhere.safetensors", data / ".." / "escape.safetensors", "/etc/passwd"):
        with pytest.raises(ValueError, match="data folder"):
            library.inside_data(outside)
