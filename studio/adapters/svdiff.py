"""The layer math of SVDiff (Han et al. 2023): learn a shift of a weight's singular values, nothing else.

For a weight W (a convolution's kernel read as an out x (in*kh*kw) matrix) the SVD is taken once,
W = U diag(S) V^T, and U, S, V stay frozen. What learns is a vector `delta` (zeros at first, one number per
singular value); the layer uses U diag(relu(S + delta)) V^T. relu keeps the singular values non-negative, so
a shift can switch a direction off but never flip it.

Training registers the shift as a `torch.nn.utils.parametrize` parametrization of `weight` rather than swapping in
a wrapper module: the layer stays an `nn.Linear` / `nn.Conv2d` (diffusers, peft and accelerate keep recognising
it), one class covers linear and convolution layers (a wrapper would re-implement conv's stride/padding/groups),
and the weight is composed from the cached factors once per forward (a Linear or Conv reads `weight` once).

Files: one `.safetensors` of the shifts only, keyed by `<part>.<module name>` ("unet.mid_block...to_q"), with
metadata (format, method, targets, base model). `apply_spectral_shifts` loads one into a plain pipeline by
recomputing the SVD of its base weights; the returned handle removes it again (original weights restored exactly).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

FILE_FORMAT = "studio-svdiff"
PARTS = ("unet", "text_encoder", "text_encoder_2")
SUPPORTED_LAYERS = (nn.Linear, nn.Conv2d)


# ------------------------------------------------------------------ factors and the composed weight


@dataclass
class SpectralFactors:
    """U, S, V^T of one weight, in float32 (an SVD in half precision is neither supported on CPU nor accurate)."""

    u: torch.Tensor
    s: torch.Tensor
    vh: torch.Tensor
    shape: torch.Size

    @classmethod
    def of(cls, weight: torch.Tensor) -> SpectralFactors:
        matrix = weight.detach().float().reshape(weight.shape[0], -1)
        u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
        return cls(u, s, vh, weight.shape)

    def compose(self, shift: torch.Tensor | None) -> torch.Tensor:
        """U diag(relu(S + shift)) V^T in the weight's shape; (U * s) scales U's columns without a diagonal matrix."""
        s = self.s if shift is None else torch.relu(self.s + shift)
        return ((self.u * s) @ self.vh).reshape(self.shape)


def singular_value_count(weight: torch.Tensor) -> int:
    return min(weight.shape[0], weight[0].numel())


class SpectralShift(nn.Module):
    """A parametrization of `weight`: ignores the stored original and returns U diag(relu(S + delta)) V^T."""

    def __init__(self, factors: SpectralFactors) -> None:
        super().__init__()
        # buffers: they follow .to(device) with the layer, and are never handed to the optimizer
        self.register_buffer("u", factors.u, persistent=False)
        self.register_buffer("s", factors.s, persistent=False)
        self.register_buffer("vh", factors.vh, persistent=False)
        self.shape = factors.shape
        self.delta = nn.Parameter(torch.zeros_like(factors.s))

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        weight = SpectralFactors(self.u, self.s, self.vh, self.shape).compose(self.delta)
        return weight.to(original.dtype)


# ------------------------------------------------------------------ which layers


def base_layer(module: nn.Module) -> nn.Module:
    """The layer itself, also when a LoRA loaded by peft wraps it (`module.base_layer`)."""
    return getattr(module, "base_layer", module)


def matches(name: str, targets: list[str]) -> bool:
    """peft's rule: a target names a module by its full name or by its last dotted parts ("to_out.0")."""
    return any(name == t or name.endswith(f".{t}") for t in targets)


def find_targets(model: nn.Module, targets: list[str], what: str) -> dict[str, nn.Module]:
    """The layers of `model` whose names match `targets`; a match that is not a Linear or Conv2d is refused."""
    found = {}
    for name, module in model.named_modules():
        if not name or not matches(name, targets):
            continue
        layer = base_layer(module)
        if not isinstance(layer, SUPPORTED_LAYERS):
            raise ValueError(
                f"{what}: {name} is a {type(layer).__name__}; SVDiff shifts Linear and Conv2d weights only"
            )
        found[name] = layer
    if not found:
        raise ValueError(f"{what}: target modules {targets} matched no layer of this model")
    return found


def add_spectral_shifts(model: nn.Module, targets: list[str], prefix: str) -> dict[str, SpectralShift]:
    """Parametrize every targeted weight of `model`; returns the shifts by `<prefix>.<module name>`."""
    from torch.nn.utils import parametrize

    shifts = {}
    for name, layer in find_targets(model, targets, prefix).items():
        shift = SpectralShift(SpectralFactors.of(layer.weight)).to(layer.weight.device)
        # unsafe=False: parametrize checks once that the composed weight has the original's shape and dtype
        parametrize.register_parametrization(layer, "weight", shift)
        shifts[f"{prefix}.{name}"] = shift
    return shifts


# ------------------------------------------------------------------ files


def save_shifts(path: Path, shifts: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    tensors = {key: value.detach().float().contiguous().cpu() for key, value in shifts.items()}
    text = {"format": FILE_FORMAT, **{k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}}
    save_file(tensors, str(temporary), metadata=text)
    temporary.replace(path)
    return path


def read_shifts(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A shift file's tensors and metadata; anything but a .safetensors of 1-D tensors is refused."""
    from safetensors import safe_open

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path.name}: an SVDiff file must be .safetensors")
    with safe_open(str(path), "pt") as stream:
        metadata = stream.metadata() or {}
        tensors = {key: stream.get_tensor(key) for key in stream.keys()}
    if not tensors:
        raise ValueError(f"{path.name} holds no spectral shifts")
    bad = [key for key, value in tensors.items() if value.dim() != 1 or key.split(".", 1)[0] not in PARTS]
    if bad:
        raise ValueError(f"{path.name} is not an SVDiff file (e.g. {bad[0]!r} is not a 1-D shift of a model part)")
    return tensors, metadata


def target_layers(pipe: Any, keys: list[str], source: str) -> dict[str, nn.Module]:
    """The layer each `<part>.<module>` key names, checked: every module exists and has as many singular values
    as the file has shifts for it (a file trained on another model is refused with the first mismatches)."""
    layers, problems = {}, []
    for key in keys:
        part_name, _, module_name = key.partition(".")
        part = getattr(pipe, part_name, None)
        try:
            layer = base_layer(part.get_submodule(module_name)) if part is not None else None
        except AttributeError:
            layer = None
        if not isinstance(layer, SUPPORTED_LAYERS):
            problems.append(f"{key} is not a Linear or Conv2d layer of this model")
            continue
        layers[key] = layer
    if problems:
        raise ValueError(f"{source} does not fit this model: {'; '.join(problems[:3])}")
    return layers


def check_shapes(
    layers: dict[str, nn.Module], shifts: dict[str, torch.Tensor], source: str, shapes: dict | None = None
) -> None:
    """Each shift must fit its layer: as many singular values, and (when the file records them, as our exports
    do) the very weight shape it was trained on, since two layers can share a count but not a meaning."""
    wrong = [
        f"{key} has {singular_value_count(layers[key].weight)} singular values here, {len(value)} in the file"
        for key, value in shifts.items()
        if singular_value_count(layers[key].weight) != len(value)
    ]
    wrong += [
        f"{key} is {list(layers[key].weight.shape)} here, {shape} in the file"
        for key, shape in (shapes or {}).items()
        if key in layers and list(layers[key].weight.shape) != list(shape)
    ]
    if wrong:
        raise ValueError(f"{source} was trained on a different model: {'; '.join(wrong[:3])}")


# ------------------------------------------------------------------ shifts on a plain pipeline (generation, checks)


class AppliedShifts:
    """Spectral shifts written into a pipeline's weights in place; several files add up (their shifts are sums in
    the same singular-value coordinates). Keeps each touched layer's original weight (restored exactly by
    `remove`) and its SVD factors (so a new scale costs a matrix product per layer, not another SVD)."""

    def __init__(self) -> None:
        self.originals: dict[str, tuple[nn.Module, torch.Tensor]] = {}
        self.factors: dict[str, SpectralFactors] = {}

    def set(
        self, pipe: Any, shifts: dict[str, torch.Tensor], source: str = "the SVDiff file", shapes: dict | None = None
    ) -> None:
        """Make `shifts` (key -> summed shift) the pipeline's only ones; layers not named get their weights back."""
        layers = target_layers(pipe, list(shifts), source)
        check_shapes(layers, shifts, source, shapes)  # before anything changes: a bad file leaves the model as it was
        with torch.no_grad():
            for key in [k for k in self.originals if k not in shifts]:
                layer, original = self.originals.pop(key)
                layer.weight.copy_(original)
                self.factors.pop(key, None)
            for key, shift in shifts.items():
                layer = layers[key]
                if key not in self.originals:
                    self.originals[key] = (layer, layer.weight.detach().clone())
                    self.factors[key] = SpectralFactors.of(layer.weight)
                factors = self.factors[key]
                layer.weight.copy_(factors.compose(shift.to(factors.s.device, torch.float32)))

    def remove(self) -> None:
        with torch.no_grad():
            for layer, original in self.originals.values():
                layer.weight.copy_(original)
        self.originals.clear()
        self.factors.clear()


def apply_spectral_shifts(pipe: Any, path: str | Path, scale: float = 1.0) -> AppliedShifts:
    """Load an SVDiff file into `pipe` with its shifts times `scale`; `remove_spectral_shifts` undoes it."""
    tensors, metadata = read_shifts(Path(path))
    applied = AppliedShifts()
    scaled = {key: value * scale for key, value in tensors.items()}
    applied.set(pipe, scaled, Path(path).name, recorded_shapes(metadata))
    return applied


def recorded_shapes(metadata: dict[str, str]) -> dict:
    """The weight shapes an export was trained on (older or foreign files may lack them: counts are checked)."""
    try:
        shapes = json.loads(metadata.get("shapes", "{}"))
    except json.JSONDecodeError:
        raise ValueError("the SVDiff file's shape record is damaged") from None
    return shapes if isinstance(shapes, dict) else {}


def remove_spectral_shifts(applied: AppliedShifts) -> None:
    applied.remove()
