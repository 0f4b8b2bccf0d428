"""A toy training method that lives outside studio/: only the biases of one UNet layer learn (BitFit on one layer).

Its folder has the roles of every method in studio/train/methods/<name>/: this file describes it to the studio (a
torch-free MethodSpec), config.py holds its dataclass, method.py what learns and what is exported. Unlike the
studio's own methods it does not register itself on import (a test registers `SPEC` and removes it after), so
importing it leaves no trace in other tests.
"""

from __future__ import annotations

from studio.train.methods.registry import MethodFacts, MethodSpec
from toy_method.config import LAYERS, ToyBiasConfig

NAME = "toy_bias"
PRESET = __file__.replace("__init__.py", "toy-bias-tiny.yaml")
EXPORT_FILE = "toy-bias.safetensors"
LATENT_CHANNELS = 4  # conv_out's biases: one per latent channel
WRONG_LAYER = "conv_in learns the image's way in, not what the model draws: prefer conv_out."


def facts(config: ToyBiasConfig) -> MethodFacts:
    return MethodFacts(
        kind=NAME,
        learning_rates=(1e-3, 1e-1),
        trains="values",
        exports="weights",
        unet_modules=(config.layer,),
        trained_values=LATENT_CHANNELS,
        pocket_seconds_per_image_step=0.05,
    )


def advice(config: ToyBiasConfig) -> list[str]:
    return [WRONG_LAYER] if config.layer == "conv_in" else []


SPEC = MethodSpec(
    name=NAME,
    label="Toy bias (tests)",
    config_class=ToyBiasConfig,
    method_class="toy_method.method:ToyBiasMethod",
    facts=facts,
    important=("layer",),
    choices={"layer": LAYERS},
    monitor_fields=("layer",),
    advice=advice,
)
