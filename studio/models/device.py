"""Choose the compute device and the matching default precision."""

from __future__ import annotations

import torch

_DTYPES: dict[str, torch.dtype] = {
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def default_dtype(device: str) -> torch.dtype:
    """The precision we run a device at: half precision on GPUs (memory and speed), float32 on CPU.

    bf16 is preferred on CUDA because it has float32's range (no overflow in the VAE or attention);
    older GPUs without bf16 fall back to fp16. MPS runs fp16. CPUs are slow or unsupported in half precision.
    """
    device_type = torch.device(device).type
    if device_type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device_type == "mps":
        return torch.float16
    return torch.float32


def pick_device(prefer: str | None = None) -> tuple[str, torch.dtype]:
    """Return `(device, dtype)`: CUDA if present, else MPS, else CPU.

    `prefer` forces a device ("cpu", "cuda", "cuda:1", "mps"); a forced device that is not
    available raises ValueError rather than silently running somewhere else.
    """
    if prefer is None or prefer == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif _mps_available():
            device = "mps"
        else:
            device = "cpu"
        return device, default_dtype(device)

    try:
        device_type = torch.device(prefer).type
    except RuntimeError as err:
        raise ValueError(f"Unknown device {prefer!r}; use 'cpu', 'cuda', 'cuda:N' or 'mps'.") from err
    if device_type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"Device {prefer!r} was requested but CUDA is not available (no NVIDIA GPU, or a CPU-only torch); "
            "use 'cpu' or install a CUDA build of torch."
        )
    if device_type == "cuda" and torch.device(prefer).index is not None:
        if torch.device(prefer).index >= torch.cuda.device_count():
            raise ValueError(f"Device {prefer!r} was requested but only {torch.cuda.device_count()} GPU(s) exist.")
    if device_type == "mps" and not _mps_available():
        raise ValueError(f"Device {prefer!r} was requested but Apple MPS is not available on this machine; use 'cpu'.")
    if device_type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Unsupported device {prefer!r}; use 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    return prefer, default_dtype(prefer)


def parse_dtype(name: str | torch.dtype | None, device: str = "cpu") -> torch.dtype:
    """Turn "fp16" / "bf16" / "fp32" / "auto" (or a torch.dtype) into a torch.dtype.

    "auto" (and None) means the device's default precision, see `default_dtype`.
    """
    if isinstance(name, torch.dtype):
        return name
    if name is None or name.strip().lower() == "auto":
        return default_dtype(device)
    key = name.strip().lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise ValueError(f"Unknown precision {name!r}; use one of 'fp16', 'bf16', 'fp32' or 'auto'.")
    return _DTYPES[key]
