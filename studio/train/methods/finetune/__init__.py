"""Full fine-tune: registered for the studio (registry.py)."""

from __future__ import annotations

from studio.train.methods.finetune.config import FinetuneConfig
from studio.train.methods.registry import MethodFacts, MethodSpec, register


def facts(config: FinetuneConfig) -> MethodFacts:
    return MethodFacts(
        kind="finetune",
        learning_rates=(1e-7, 1e-3),  # the full UNet again; SD's style fine-tunes use 1e-6 to 1e-5
        trains="model",
        exports="model",
        text_encoder_learns=config.train_text_encoder,
        keeps_average=config.use_ema,
        check_reloads_base=config.export_single_file,  # the single file loads into a fresh base model
        pocket_seconds_per_image_step=0.06,
    )


register(
    MethodSpec(
        name="finetune",
        label="Full fine-tune",
        summary="a style",
        config_class=FinetuneConfig,
        method_class="studio.train.methods.finetune.method:FinetuneMethod",
        facts=facts,
        position=3,
        important=("train_text_encoder", "use_ema"),
    )
)
