"""LoRAs, SVDiff shifts and textual-inversion embeddings on a loaded pipeline, several at once, each weighted.

The base model stays loaded; adapters are added to it by diffusers (`load_lora_weights(adapter_name=...)`, which
also reads kohya / AUTOMATIC1111 / ComfyUI files) and switched with `set_adapters`. An adapter turned off stays
loaded, so turning it on again costs nothing; one removed from the list is deleted. With `fuse`, the active
adapters are merged into the base weights (generation then costs what the base costs) and unmerged exactly when the
set or a weight changes.

Sources a LoRA may come from: a `.safetensors` file (diffusers or kohya keys), a folder holding
`pytorch_lora_weights.safetensors`, a run folder (its exported LoRA), or one of a run's checkpoints
(`checkpoints/step-N`, converted from the training state with the run's true alpha). Pickle files (`.bin`, `.pt`,
`.ckpt`) load only with `allow_pickle`, and then with `torch.load(weights_only=True)`.

SVDiff files (spectral shifts, svdiff.py) are written into the base weights in place: the SVD
of each shifted weight is computed once and kept, so a new weight costs one matrix product per layer, and the
original weights come back exactly when a file is turned off.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.adapters.files import lora_source, peft_keys_only, read_tensors, svdiff_source
from studio.runs.layout import LORA_FILE

BLOCKS = ("down", "mid", "up")
MAX_WEIGHT = 5.0
COMPONENTS = ("unet", "text_encoder", "text_encoder_2")


def split_weight(text: str) -> tuple[str, float]:
    """`PATH` or `PATH:WEIGHT` -> (path, weight, 1 when absent); a Windows drive letter is not read as a weight."""
    path, sep, weight = text.rpartition(":")
    if sep and re.fullmatch(r"[-+]?\d*\.?\d+", weight.strip()):
        return path, float(weight)
    return text, 1.0


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA in the stack: where it is, how strongly it applies, whether it is on."""

    path: str = field(metadata={"help": "A .safetensors LoRA (diffusers or kohya), a run folder or a checkpoint."})
    weight: float = field(default=1.0, metadata={"help": "Strength; negative values push away from the concept."})
    enabled: bool = field(default=True, metadata={"help": "Off keeps it loaded but without effect."})
    blocks: dict | None = field(
        default=None, metadata={"help": "Per-block multipliers of the weight on the UNet, e.g. {'down': 0, 'up': 1}."}
    )
    trigger: str = field(
        default="",
        metadata={
            "help": "Word(s) that switch it on when stacking is 'scoped' (comma-separated); empty: the word it was "
            "trained with, read from its run or file."
        },
    )

    def __post_init__(self) -> None:
        if not str(self.path).strip():
            raise ValueError("a LoRA needs a path")
        if not -MAX_WEIGHT <= self.weight <= MAX_WEIGHT:
            raise ValueError(f"LoRA weight must be between -{MAX_WEIGHT} and {MAX_WEIGHT}, got {self.weight}")
        if self.blocks is not None:
            unknown = set(self.blocks) - set(BLOCKS)
            if unknown:
                raise ValueError(f"unknown LoRA block(s) {sorted(unknown)}; use {', '.join(BLOCKS)}")
        if "\n" in self.trigger or len(self.trigger) > 200:
            raise ValueError("a LoRA's trigger is a word or a few comma-separated words")

    @classmethod
    def parse(cls, text: str) -> LoraSpec:
        """`PATH` or `PATH:WEIGHT` (the CLI's form); a Windows drive letter is not mistaken for a weight."""
        return cls(*split_weight(text))

    @classmethod
    def from_dict(cls, values: dict) -> LoraSpec:
        unknown = set(values) - {"path", "weight", "enabled", "blocks", "trigger"}
        if unknown:
            raise ValueError(f"unknown LoRA setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def is_lcm(self) -> bool:
        """An LCM-LoRA (few-step sampling), recognised by its name as the community names them.

        The file's name, or its folder's (`lcm-lora-sdv1-5/pytorch_lora_weights.safetensors`), or, for a file in
        the hub cache (`models--latent-consistency--lcm-lora-sdv1-5/snapshots/<hash>/…`), the repository's.
        """
        path = Path(self.path)
        names = [path.name]
        if path.name == LORA_FILE:  # the standard file name says nothing: its folder names the LoRA
            names.append(path.parent.name)
        names += [p.name for p in path.parents if p.name.startswith("models--")][:1]
        return any("lcm" in name.lower() for name in names)


@dataclass(frozen=True)
class EmbeddingSpec:
    """One textual-inversion embedding; `token` is the word to write in prompts."""

    path: str = field(metadata={"help": "A .safetensors embedding (diffusers learned_embeds or A1111 emb_params)."})
    token: str = field(default="", metadata={"help": "The prompt word; empty: the file's own token or its name."})

    def __post_init__(self) -> None:
        if not str(self.path).strip():
            raise ValueError("an embedding needs a path")
        if self.token and (" " in self.token.strip() or not self.token.strip()):
            raise ValueError(f"an embedding token is one word, got {self.token!r}")

    @classmethod
    def from_dict(cls, values: dict) -> EmbeddingSpec:
        unknown = set(values) - {"path", "token"}
        if unknown:
            raise ValueError(f"unknown embedding setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SvdiffSpec:
    """One SVDiff file (spectral shifts); `weight` scales the shifts (0: the base model, 1: as trained)."""

    path: str = field(metadata={"help": "An SVDiff .safetensors (a run's svdiff.safetensors), a run or a checkpoint."})
    weight: float = field(default=1.0, metadata={"help": "Scale of the shifts; around 0.8-1.2 is usual."})
    enabled: bool = field(default=True, metadata={"help": "Off keeps the model's own weights."})

    def __post_init__(self) -> None:
        if not str(self.path).strip():
            raise ValueError("an SVDiff file needs a path")
        if not -MAX_WEIGHT <= self.weight <= MAX_WEIGHT:
            raise ValueError(f"SVDiff weight must be between -{MAX_WEIGHT} and {MAX_WEIGHT}, got {self.weight}")

    @classmethod
    def parse(cls, text: str) -> SvdiffSpec:
        """`PATH` or `PATH:WEIGHT`, as for LoRAs."""
        return cls(*split_weight(text))

    @classmethod
    def from_dict(cls, values: dict) -> SvdiffSpec:
        unknown = set(values) - {"path", "weight", "enabled"}
        if unknown:
            raise ValueError(f"unknown SVDiff setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ reading files safely


def _file_key(path: Path) -> str:
    """Same path and same file contents (by size and time) -> same adapter; an overwritten file reloads."""
    stat = (path / "trainable.safetensors" if path.is_dir() else path).stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _adapter_name(source: Path, key: str) -> str:
    # peft uses adapter names as module keys: letters, digits and underscores only
    stem = re.sub(r"\W+", "_", (source.parent.name if source.is_dir() else source.stem))[:24]
    return f"{stem}_{key[:8]}"


# ------------------------------------------------------------------ the stack on one pipeline


class AdapterStack:
    """The LoRAs and embeddings loaded into one pipeline. It holds no reference to the pipeline itself, so
    releasing the base model releases everything loaded into it."""

    def __init__(self, allow_pickle: bool = False) -> None:
        self.allow_pickle = allow_pickle
        self.loras: dict[str, str] = {}  # file key -> adapter name
        self.embeddings: dict[tuple, list[tuple[str, list[str]]]] = {}  # (key, token) -> [(component, tokens)]
        self.fused: tuple | None = None  # the (names, weights) merged into the base weights, if any
        self.lora_loads = 0  # how many LoRA files were read (a switch must not reload)
        self.fuses = 0
        self.svdiff = None  # AppliedShifts: the base weights it replaced and their SVD factors
        self.svdiff_signature: tuple = ()
        self.svdiff_files: dict[str, tuple] = {}  # file key -> (its shifts, recorded shapes), read once

    # ---- LoRAs

    def _load_lora(self, pipe: Any, spec: LoraSpec) -> str:
        source = lora_source(spec.path)
        key = _file_key(source)
        if key in self.loras:
            return self.loras[key]
        name = _adapter_name(source, key)
        if source.is_dir():
            from studio.adapters.kohya import checkpoint_kohya  # torch: only when a checkpoint is previewed

            pipe.load_lora_weights(checkpoint_kohya(source), adapter_name=name)
        elif source.suffix == ".safetensors":
            # diffusers reads the file itself so a diffusers export's adapter metadata (its alpha) is kept
            with peft_keys_only(source) as readable:
                pipe.load_lora_weights(str(readable.parent), weight_name=readable.name, adapter_name=name)
        else:
            pipe.load_lora_weights(read_tensors(source, self.allow_pickle), adapter_name=name)
        self.loras[key] = name
        self.lora_loads += 1
        return name

    def adapter_name(self, pipe: Any, spec: LoraSpec) -> str:
        """The name `spec`'s file is loaded under (loading it if it is new)."""
        return self._load_lora(pipe, spec)

    def _components(self, pipe: Any) -> dict[str, list[str]]:
        return pipe.get_list_adapters() if self.loras else {}

    @staticmethod
    def scale_blocks(pipe: Any, active: list[tuple[str, LoraSpec]]) -> None:
        """Per-block weights: every adapted UNet layer under down_blocks / mid_block / up_blocks gets the weight times
        its block's multiplier; the layers outside them (conv_in, the time embedding, conv_out) and the text
        encoders keep the plain weight that `set_adapters` gave. Done here, by module name, because diffusers' own
        per-block scales cover attention layers only: a LoRA on conv_in (the pocket preset's) made them fail, and
        a block without attention kept weight 1 whatever its multiplier."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        blocked = [(name, spec) for name, spec in active if spec.blocks]
        if not blocked:
            return
        for module_name, module in pipe.unet.named_modules():
            block = _block_of(module_name)
            if block is None or not isinstance(module, BaseTunerLayer):
                continue
            for name, spec in blocked:
                module.set_scale(name, spec.weight * float(spec.blocks.get(block, 1.0)))  # no-op if not adapted

    def unfuse(self, pipe: Any) -> None:
        if self.fused is not None:
            pipe.unfuse_lora(components=self._fusable(pipe))
            self.fused = None

    def _fusable(self, pipe: Any) -> list[str]:
        return [part for part in COMPONENTS if part in self._components(pipe)]

    def apply_loras(self, pipe: Any, specs: list[LoraSpec], fuse: bool = False) -> list[str]:
        """Make `specs` the pipeline's LoRAs (loading only new files); returns the active adapter names."""
        if any(_file_key(lora_source(spec.path)) not in self.loras for spec in specs):
            self.unfuse(pipe)  # peft would unmerge on its own while loading, behind the stack's back
        names = [self._load_lora(pipe, spec) for spec in specs]
        wanted = set(names)
        stale = [name for name in self.loras.values() if name not in wanted]
        if stale:
            self.unfuse(pipe)
            pipe.delete_adapters(stale)
            self.loras = {key: name for key, name in self.loras.items() if name in wanted}
        active = [(name, spec) for name, spec in zip(names, specs) if spec.enabled]
        weights = [spec.weight for _, spec in active]
        signature = (tuple(name for name, _ in active), repr([(spec.weight, spec.blocks) for _, spec in active]))
        if self.fused is not None and (not fuse or self.fused != signature):
            self.unfuse(pipe)  # the merged weights are no longer the ones asked for
        if self.fused == signature:
            return [name for name, _ in active]
        if not self.loras:
            return []
        if not active:
            pipe.disable_lora()
            return []
        pipe.enable_lora()
        pipe.set_adapters([name for name, _ in active], adapter_weights=weights)
        self.scale_blocks(pipe, active)
        if fuse:
            pipe.fuse_lora(components=self._fusable(pipe), adapter_names=[name for name, _ in active])
            self.fused = signature
            self.fuses += 1
        return [name for name, _ in active]

    # ---- SVDiff spectral shifts

    def _svdiff_shifts(self, spec: SvdiffSpec) -> tuple[str, dict]:
        from studio.adapters.svdiff import read_shifts, recorded_shapes

        source = svdiff_source(spec.path)
        key = _file_key(source)
        if key not in self.svdiff_files:
            tensors, metadata = read_shifts(source)
            self.svdiff_files[key] = (tensors, recorded_shapes(metadata))
        return key, self.svdiff_files[key]

    def apply_svdiffs(self, pipe: Any, specs: list[SvdiffSpec]) -> None:
        """Make `specs` the pipeline's spectral shifts, written into the base weights; their shifts add up.
        Comes before the LoRAs: a fused LoRA is unfused first, so the SVD is always of the model's own weights."""
        from studio.adapters.svdiff import AppliedShifts

        loaded = [(self._svdiff_shifts(spec), spec) for spec in specs]
        signature = tuple((key, spec.weight) for (key, _), spec in loaded if spec.enabled)
        if signature == self.svdiff_signature:
            return
        total: dict = {}
        shapes: dict = {}
        for (_, (shifts, recorded)), spec in loaded:
            shapes |= recorded
            if spec.enabled:
                for name, shift in shifts.items():
                    total[name] = total.get(name, 0) + shift * spec.weight
        self.unfuse(pipe)
        if self.svdiff is None:
            self.svdiff = AppliedShifts()
        self.svdiff.set(pipe, total, ", ".join(Path(spec.path).name for spec in specs), shapes)
        self.svdiff_signature = signature
        wanted = {key for (key, _), _ in loaded}
        self.svdiff_files = {key: value for key, value in self.svdiff_files.items() if key in wanted}

    # ---- embeddings

    def _embedding_parts(self, pipe: Any, state: dict, token: str) -> list[tuple[str, str, Any]]:
        """(text encoder name, tokenizer name, tensors) for each encoder the file holds vectors for."""
        if "clip_l" in state or "clip_g" in state:  # SDXL: one set of vectors per text encoder
            if getattr(pipe, "text_encoder_2", None) is None:
                raise ValueError(f"{token}: an SDXL embedding (clip_l + clip_g) needs an SDXL model")
            return [("text_encoder", "tokenizer", state["clip_l"]), ("text_encoder_2", "tokenizer_2", state["clip_g"])]
        return [("text_encoder", "tokenizer", state)]

    def _load_embedding(self, pipe: Any, spec: EmbeddingSpec) -> tuple:
        path = Path(spec.path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no embedding file at {path}")
        state = read_tensors(path, self.allow_pickle)
        token = spec.token.strip() or _embedding_token(state, path)
        key = (_file_key(path), token)
        if key in self.embeddings:
            return key
        tokenizer = pipe.tokenizer
        if token in tokenizer.get_vocab():
            raise ValueError(f"the token {token!r} is already in use; choose another one for {path.name}")
        loaded = []
        for encoder_name, tokenizer_name, tensors in self._embedding_parts(pipe, state, token):
            tokenizer, encoder = getattr(pipe, tokenizer_name), getattr(pipe, encoder_name)
            before = set(tokenizer.get_added_vocab())
            if not isinstance(tensors, dict):
                tensors = {token: tensors}
            pipe.load_textual_inversion(tensors, token=token, tokenizer=tokenizer, text_encoder=encoder)
            # a multi-vector embedding adds token, token_1, token_2, ...: every one must go on unload
            loaded.append((encoder_name, sorted(set(tokenizer.get_added_vocab()) - before)))
        self.embeddings[key] = loaded
        return key

    def apply_embeddings(self, pipe: Any, specs: list[EmbeddingSpec]) -> list[str]:
        """Make `specs` the loaded embeddings; returns their prompt tokens."""
        wanted = []
        for spec in specs:
            key = self._load_embedding(pipe, spec)
            wanted.append(key)
        for key in [k for k in self.embeddings if k not in wanted]:
            self._unload_embedding(pipe, key)
        return [token for _, token in wanted]

    def _unload_embedding(self, pipe: Any, key: tuple) -> None:
        for encoder_name, tokens in self.embeddings.pop(key):
            tokenizer_name = "tokenizer_2" if encoder_name == "text_encoder_2" else "tokenizer"
            pipe.unload_textual_inversion(
                tokens=tokens, tokenizer=getattr(pipe, tokenizer_name), text_encoder=getattr(pipe, encoder_name)
            )


def _block_of(module_name: str) -> str | None:
    """Which of BLOCKS a UNet module belongs to ("down_blocks.1.attentions.0.…" -> "down"), None outside them."""
    top = module_name.split(".", 1)[0]
    return {"down_blocks": "down", "mid_block": "mid", "up_blocks": "up"}.get(top)


def _embedding_token(state: dict, path: Path) -> str:
    """The prompt word an embedding file names: a diffusers file's only key, else (A1111) the file's name."""
    keys = [k for k in state if k not in ("emb_params", "string_to_param", "string_to_token", "name", "step")]
    if len(state) == 1 and keys:
        return keys[0]
    if isinstance(state.get("name"), str):
        return state["name"]
    return path.stem
