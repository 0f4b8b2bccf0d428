"""Device and precision choice."""

from __future__ import annotations

import pytest
import torch

from studio.models import default_dtype, parse_dtype, pick_device


def test_cpu_is_float32():
    assert pick_device("cpu") == ("cpu", torch.float32)


def test_auto_pick_matches_the_machine():
    device, dtype = pick_device()
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert device == expected
    assert dtype == default_dtype(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_forcing_missing_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_forcing_missing_mps_is_a_clear_error():
    with pytest.raises(ValueError, match="MPS is not available"):
        pick_device("mps")


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="device"):
        pick_device("tpu9")


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("fp16", torch.float16), ("BF16", torch.bfloat16), ("fp32", torch.float32), ("float16", torch.float16)],
)
def test_parse_dtype(name, dtype):
    assert parse_dtype(name) == dtype


def test_parse_dtype_auto_follows_the_device():
    assert parse_dtype("auto", "cpu") == torch.float32
    assert parse_dtype(None, "cpu") == torch.float32
    assert parse_dtype(torch.bfloat16) == torch.bfloat16


def test_parse_dtype_rejects_unknown_names():
    with pytest.raises(ValueError, match="fp16"):
        parse_dtype("int8")
