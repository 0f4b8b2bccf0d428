"""Loading the base model: device choice, family detection, one loader, and single-file export."""

from studio.models.device import default_dtype, parse_dtype, pick_device
from studio.models.errors import ModelLoadError
from studio.models.family import (
    Family,
    detect_family,
    family_from_configs,
    family_from_folder,
    family_from_single_file,
    family_from_state_dict,
    pipeline_class,
)
from studio.models.loader import LoadedModel, ModelSource, hub_offline, load_pipeline, resolve_source
from studio.models.single_file import ldm_state_dict, pipeline_family, save_single_file

__all__ = [
    "Family",
    "LoadedModel",
    "ModelLoadError",
    "ModelSource",
    "default_dtype",
    "detect_family",
    "family_from_configs",
    "family_from_folder",
    "family_from_single_file",
    "family_from_state_dict",
    "hub_offline",
    "ldm_state_dict",
    "load_pipeline",
    "parse_dtype",
    "pick_device",
    "pipeline_class",
    "pipeline_family",
    "resolve_source",
    "save_single_file",
]
