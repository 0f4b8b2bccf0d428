"""Generation: settings, samplers, pipeline cache, PNG metadata."""

from studio.generate.engine import GeneratedImage, GenerationEngine, GenerationSettings, PipelineCache, save_images
from studio.generate.png_metadata import read_params, save_png
from studio.generate.samplers import SAMPLERS, make_scheduler

__all__ = [
    "SAMPLERS",
    "GeneratedImage",
    "GenerationEngine",
    "GenerationSettings",
    "PipelineCache",
    "make_scheduler",
    "read_params",
    "save_images",
    "save_png",
]
