"""One entry point to load the base model, whatever form the user has it in.

`load_pipeline(spec)` accepts the shipped pocket model, a diffusers folder, a
single-file checkpoint (A1111 / ComfyUI style) or a Hugging Face hub id, works
out the model family from the files, and returns a ready pipeline on the chosen
device. Every failure is a `ModelLoadError` whose message says what to do.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from studio import paths
from studio.models.device import parse_dtype, pick_device
from studio.models.errors import ModelLoadError
from studio.models.family import (
    DEFAULT_CONFIG_REPOS,
    Family,
    family_from_configs,
    family_from_folder,
    family_from_single_file,
    pipeline_class,
)

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

__all__ = [
    "LoadedModel",
    "ModelLoadError",
    "ModelSource",
    "check_available",
    "hub_offline",
    "load_pipeline",
    "resolve_source",
]

SourceKind = Literal["pocket", "folder", "single_file", "hub"]

# Pickle-based formats: opening one can run arbitrary code, so they need an explicit opt-in.
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
# Hub repo ids: "owner/name" (huggingface_hub's own validator then checks the finer rules).
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
# The small files diffusers needs to build a pipeline around a single-file checkpoint (as in diffusers itself).
_CONFIG_PATTERNS = ["**/*.json", "*.json", "*.txt", "**/*.txt", "**/*.model"]


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: `location` is a local path (pocket/folder/single_file) or a hub id (hub)."""

    kind: SourceKind
    location: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.location}"


@dataclass
class LoadedModel:
    """A loaded text-to-image pipeline and what we know about it."""

    pipe: DiffusionPipeline
    family: Family
    source: ModelSource
    device: str
    dtype: torch.dtype


def hub_offline() -> bool:
    """True when the user asked for no hub traffic (HF_HUB_OFFLINE, read now, or as huggingface_hub saw it)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return env or bool(constants.HF_HUB_OFFLINE)


@contextmanager
def _offline() -> Iterator[None]:
    """Make any hub request fail while loading local files, so a local load can never reach the network.

    `local_files_only=True` already asks for that; this is the belt to its braces. huggingface_hub reads
    HF_HUB_OFFLINE once at import, so its module constant is switched too (and both are restored after).
    Process-wide while it lasts: loads are not expected to run concurrently with hub downloads.
    """
    from huggingface_hub import constants

    old_env, old_const = os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old_const
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env


def _is_hub_id(spec: str) -> bool:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not _HUB_ID.match(spec):
        return False
    try:
        validate_repo_id(spec)
    except HFValidationError:  # e.g. "--" or ".." inside the name
        return False
    return True


def resolve_source(spec: str | None, allow_pickle: bool = False) -> ModelSource:
    """Decide what kind of model `spec` names, checking only what can be checked without loading it."""
    spec = (spec or "").strip()
    if spec in ("", "pocket"):
        return ModelSource("pocket", str(paths.POCKET_MODEL_DIR))

    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(
                f"Folder '{path}' has no model_index.json, so it is not a diffusers pipeline; pass a folder written "
                "by `save_pretrained`, a .safetensors checkpoint, or a hub id like 'owner/name'."
            )
        return ModelSource("folder", str(path.resolve()))

    suffix = path.suffix.lower()
    if path.is_file():
        if suffix == ".safetensors":
            return ModelSource("single_file", str(path.resolve()))
        if suffix in PICKLE_SUFFIXES:
            if not allow_pickle:
                raise ModelLoadError(
                    f"'{path.name}' is a pickle-based checkpoint, which can run code when opened, so it is refused by "
                    "default; convert it to .safetensors, or pass allow_pickle=True (--allow-pickle) if you trust "
                    "where it came from."
                )
            return ModelSource("single_file", str(path.resolve()))
        raise ModelLoadError(
            f"'{path}' is not a model file the studio can load; pass a .safetensors checkpoint, a diffusers folder, "
            "or a hub id like 'owner/name'."
        )

    looks_like_path = suffix in (".safetensors", *PICKLE_SUFFIXES) or spec.startswith((".", "/", "~", "\\"))
    if _is_hub_id(spec) and not looks_like_path:
        return ModelSource("hub", spec)
    if looks_like_path:
        raise ModelLoadError(f"There is no file or folder at '{path}'; check the path.")
    if "/" in spec or os.sep in spec:
        raise ModelLoadError(
            f"There is no file or folder at '{path}', and it is not a valid hub id like 'owner/name' either; "
            "check the path or the spelling of the id."
        )
    raise ModelLoadError(
        f"'{spec}' is neither an existing file or folder nor a hub id like 'owner/name'; check the spelling."
    )


def _one_line(err: BaseException) -> str:
    """The first line of an exception's message, so our error stays one sentence."""
    text = str(err).strip().splitlines()
    return text[0].rstrip(".") if text else type(err).__name__


def _pipeline_kwargs(family: Family) -> dict[str, Any]:
    # SD1/SD2 pipelines carry an NSFW classifier; the studio does not use it (and it would need extra
    # weights), so it is switched off explicitly, which also silences diffusers' warning about it.
    if family is Family.SDXL:
        return {}
    return {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


def _weights_variant(folder: str) -> str | None:
    """Return "fp16" when the UNet is only there as an fp16 variant (`hf download ... --include "*fp16*"`).

    diffusers loads variant files only when asked for them by name.
    """
    unet = Path(folder, "unet")
    if any(unet.glob("diffusion_pytorch_model.fp16*")) and not any(unet.glob("diffusion_pytorch_model.safetensors*")):
        return "fp16"
    return None


def _from_local_folder(folder: str, dtype: torch.dtype) -> tuple[DiffusionPipeline, Family]:
    family = family_from_folder(folder)
    try:
        with _offline():
            pipe = pipeline_class(family).from_pretrained(
                folder,
                dtype=dtype,
                local_files_only=True,
                variant=_weights_variant(folder),
                **_pipeline_kwargs(family),
            )
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise ModelLoadError(
            f"Could not load the model in '{folder}' ({_one_line(err)}); its files may be incomplete, so re-download "
            "or re-export it."
        ) from err
    return pipe, family


def _not_cached_message(repo_id: str) -> str:
    return (
        f"Model '{repo_id}' is not in the local Hugging Face cache and the hub is unreachable (offline); download it "
        f"once with `hf download {repo_id}` on a connected machine, or pass a local folder or a .safetensors file."
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection to the hub's endpoint, no retries: whether a download could start at all. (A hub
    download that cannot connect retries five times first: 26 s before the error, measured offline.)"""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout):
            return True
    except OSError:
        return False


def check_available(spec: str | None) -> ModelSource:
    """What can be known about a base model without loading it, in well under a second: that it resolves, and
    that a hub id is in the local cache or the hub can be reached now."""
    from huggingface_hub import try_to_load_from_cache

    source = resolve_source(spec)
    if source.kind == "hub" and not isinstance(try_to_load_from_cache(source.location, "model_index.json"), str):
        if hub_offline() or not hub_reachable():
            raise ModelLoadError(_not_cached_message(source.location))
    return source


def _cache_or_hub(repo_id: str, fetch: Callable[[bool], str]) -> str:
    """Run `fetch(local_only)` against the cache first, then (unless offline) against the hub.

    Hub errors become ModelLoadError. Cache first means no network round-trip when the files are already here.
    """
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        return fetch(True)
    except OSError:  # LocalEntryNotFoundError and friends: not (completely) cached
        if hub_offline():
            raise ModelLoadError(_not_cached_message(repo_id)) from None
    try:
        return fetch(False)
    except RepositoryNotFoundError as err:  # also raised for private and gated repos
        raise ModelLoadError(
            f"Model '{repo_id}' was not found on the Hugging Face hub, or it is private or gated; check the id, or "
            "log in with `hf auth login` and accept its licence on the model's page."
        ) from err
    except RemoteEntryNotFoundError as err:
        raise ModelLoadError(
            f"Hub repo '{repo_id}' lacks a file every diffusers pipeline has (model_index.json or unet/config.json); "
            "pick a repo in diffusers format, or download its .safetensors checkpoint and pass that file."
        ) from err
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:  # no connection, timeouts, server errors
        raise ModelLoadError(_not_cached_message(repo_id)) from err


def _hub_family(repo_id: str) -> Family:
    """Read the two configs that decide the family, fetching just those files if needed."""
    from huggingface_hub import hf_hub_download

    def read(filename: str) -> dict[str, Any]:
        local = _cache_or_hub(
            repo_id, lambda local_only: hf_hub_download(repo_id, filename, local_files_only=local_only)
        )
        return json.loads(Path(local).read_text(encoding="utf-8"))

    return family_from_configs(read("model_index.json"), read("unet/config.json"))


def _hub_config_folder(repo_id: str) -> str:
    """A local snapshot of a hub pipeline's config files (no weights), for building around a single file."""
    from huggingface_hub import snapshot_download

    def fetch(local_only: bool) -> str:
        folder = snapshot_download(repo_id, allow_patterns=_CONFIG_PATTERNS, local_files_only=local_only)
        if not Path(folder, "model_index.json").is_file():
            raise FileNotFoundError(f"{repo_id}: no model_index.json in {folder}")
        return folder

    return _cache_or_hub(repo_id, fetch)


def _from_hub(repo_id: str, dtype: torch.dtype) -> tuple[DiffusionPipeline, Family]:
    family = _hub_family(repo_id)
    cls, kwargs = pipeline_class(family), _pipeline_kwargs(family)
    try:
        with _offline():
            return cls.from_pretrained(repo_id, dtype=dtype, local_files_only=True, **kwargs), family
    except (OSError, ValueError) as err:  # weights not (all) cached yet
        if hub_offline():
            raise ModelLoadError(
                f"Model '{repo_id}' is only partly in the local Hugging Face cache and the hub is unreachable "
                f"(offline); finish the download with `hf download {repo_id}` on a connected machine."
            ) from err
    try:
        return cls.from_pretrained(repo_id, dtype=dtype, **kwargs), family
    except (OSError, ValueError, RuntimeError) as err:
        raise ModelLoadError(
            f"Could not download or load '{repo_id}' from the hub ({_one_line(err)}); check the connection and "
            "free disk space, then try again."
        ) from err


def _single_file_config(family: Family, config_folder: str | Path | None, checkpoint: str) -> str:
    """The local diffusers folder whose configs (and tokenizer files) describe the checkpoint's components.

    A single file holds only weights; diffusers builds the pipeline from a diffusers-format config folder
    (`config=`). Without one it would fetch the standard repo's configs from the hub, even with
    `local_files_only=True`, so we always resolve a local folder ourselves first.
    """
    name = Path(checkpoint).name
    if config_folder is None:
        repo_id = DEFAULT_CONFIG_REPOS[family]
        try:
            return _hub_config_folder(repo_id)
        except ModelLoadError as err:
            raise ModelLoadError(
                f"'{name}' needs the configs of a standard {family} model ({repo_id}), which are not in the local "
                f"Hugging Face cache and could not be downloaded; pass --config with a diffusers folder of the same "
                f"family, or run `hf download {repo_id} --include '*.json' '*.txt'` once on a connected machine."
            ) from err
    config = Path(config_folder).expanduser()
    if config.is_dir():
        folder = str(config.resolve())
    elif _is_hub_id(str(config_folder)):
        folder = _hub_config_folder(str(config_folder))
    else:
        raise ModelLoadError(
            f"The config '{config_folder}' is neither a diffusers folder nor a hub id; check the path."
        )
    config_family = family_from_folder(folder)
    if config_family is not family:
        raise ModelLoadError(
            f"'{name}' is an {family} checkpoint but the config '{config_folder}' is an {config_family} model; pass a "
            "config folder of the same family."
        )
    return folder


def _from_single_file(
    path: str, dtype: torch.dtype, allow_pickle: bool, config_folder: str | Path | None
) -> tuple[DiffusionPipeline, Family]:
    family = family_from_single_file(path, allow_pickle=allow_pickle)
    folder = _single_file_config(family, config_folder, path)
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    try:
        with _offline():
            pipe = pipeline_class(family).from_single_file(
                path, config=folder, local_files_only=True, dtype=dtype, **_pipeline_kwargs(family)
            )
    except (OSError, ValueError, RuntimeError, KeyError, SingleFileComponentError) as err:
        raise ModelLoadError(
            f"Could not build a {family} pipeline from '{Path(path).name}' with the configs in '{folder}' "
            f"({_one_line(err)}); check that the config folder matches the checkpoint's architecture."
        ) from err
    return pipe, family


def load_pipeline(
    spec: str | ModelSource | None = "pocket",
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    allow_pickle: bool = False,
    config_folder: str | Path | None = None,
) -> LoadedModel:
    """Load a text-to-image pipeline from the pocket model, a folder, a single file or a hub id.

    `device` defaults to the best available (see `pick_device`) and `dtype` to that device's precision.
    `config_folder` (a diffusers folder or hub id of the same family) describes a single-file checkpoint's
    components; without it the standard configs for the detected family are used from the cache or the hub.
    """
    source = spec if isinstance(spec, ModelSource) else resolve_source(spec, allow_pickle=allow_pickle)
    try:
        device, default_dtype = pick_device(device)
        torch_dtype = default_dtype if dtype is None else parse_dtype(dtype, device)
    except ValueError as err:  # already one sentence saying what to do
        raise ModelLoadError(str(err)) from err

    if source.kind == "pocket":
        if not (Path(source.location) / "model_index.json").is_file():
            raise ModelLoadError(
                f"The pocket model has not been built yet (no model_index.json in '{source.location}'); train it with "
                "`studio pocket pretrain`, or pass another model."
            )
        pipe, family = _from_local_folder(source.location, torch_dtype)
    elif source.kind == "folder":
        pipe, family = _from_local_folder(source.location, torch_dtype)
    elif source.kind == "hub":
        pipe, family = _from_hub(source.location, torch_dtype)
    else:
        pipe, family = _from_single_file(source.location, torch_dtype, allow_pickle, config_folder)

    try:
        pipe.to(device)  # the weights were loaded in `torch_dtype` already (casting after would undo fp32 keeps)
    except RuntimeError as err:  # typically out of GPU memory
        raise ModelLoadError(
            f"The model loaded but could not be moved to {device} in {str(torch_dtype).removeprefix('torch.')} "
            f"({_one_line(err)}); free some memory, or pick a smaller precision or another device."
        ) from err
    return LoadedModel(pipe=pipe, family=family, source=source, device=device, dtype=torch_dtype)
