"""INT8 inference: the UNet's and text encoder's linear layers stored as int8 (torchao weight-only quantization).

torchao is PyTorch's maintained quantization library (torch.ao.quantization.quantize_dynamic is deprecated). Its
int8 *weight-only* scheme keeps activations in float and dequantizes weights on the fly, so it runs on any CPU or GPU.
Its int8 *dynamic* scheme (activations quantized too) ran about 7x slower than float32 on this project's CPU
(2026-11-23, torch 2.13): it has no fast CPU kernel for it, so the studio does not offer it.

What int8 buys: linear weights take a quarter of their float32 bytes, which matters for models whose weights are
mostly linear layers and whose inference is memory-bound (SD 1.5's UNet on a CPU: ~860M parameters, a large
share in attention and feed-forward projections). Convolutions stay float. The pocket model is the opposite case:
5.3M parameters, mostly convolutions, so it gains little (see BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import warnings

QUANTIZE_MODES = ("none", "int8")
INSTALL_HINT = "int8 inference needs torchao: pip install 'diffusion-studio[int8]' (or pip install torchao)"


def _torchao():
    try:
        # torchao 0.18 logs a failed load of each of its GPU-only kernels on a CPU machine; they are not used here
        logging.getLogger("torchao").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchao.quantization import Int8WeightOnlyConfig, quantize_
    except ImportError as error:
        raise ValueError(INSTALL_HINT) from error
    return quantize_, Int8WeightOnlyConfig


def denoising_parts(pipe) -> dict:
    """The parts int8 applies to: the UNet (or transformer) and the text encoder(s); the VAE stays float."""
    names = ("unet", "transformer", "text_encoder", "text_encoder_2")
    return {name: getattr(pipe, name) for name in names if getattr(pipe, name, None) is not None}


def quantize_pipeline(pipe, mode: str) -> None:
    """Quantize `pipe` in place; "none" leaves it as it is."""
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"unknown quantization {mode!r}; choose one of: {', '.join(QUANTIZE_MODES)}")
    if mode == "none":
        return
    quantize_, int8_weight_only = _torchao()
    for module in denoising_parts(pipe).values():
        quantize_(module, int8_weight_only())


def is_int8(weight) -> bool:
    """A torchao int8 tensor (its class name differs between torchao versions, its dtype does not)."""
    inner = getattr(weight, "qdata", None)
    if inner is None:
        inner = getattr(weight, "int_data", None)
    return inner is not None and str(inner.dtype) == "torch.int8"


def count_linear_layers(module) -> tuple[int, int]:
    """(int8 linear layers, all linear layers) of a module."""
    import torch

    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    return sum(is_int8(m.weight) for m in linears), len(linears)


def weight_bytes(module) -> int:
    """Bytes the module's parameters take, counting an int8 tensor's data and its scales."""
    total = 0
    for param in module.parameters():
        inner = [getattr(param, name, None) for name in ("qdata", "scale", "zero_point", "int_data")]
        inner = [t for t in inner if t is not None and hasattr(t, "element_size")]
        if inner:
            total += sum(t.numel() * t.element_size() for t in inner)
        else:
            total += param.numel() * param.element_size()
    return total
