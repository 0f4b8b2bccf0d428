"""LoRA and its peft variants (DoRA, LoHa, LoKr): registered for the studio (registry.py)."""

from __future__ import annotations

from studio.train.methods.lora.config import UNET_ATTENTION, VARIANTS, LoraConfig
from studio.train.methods.registry import MethodFacts, MethodSpec, register


def facts(config: LoraConfig) -> MethodFacts:
    return MethodFacts(
        kind="lora",
        learning_rates=(1e-5, 3e-3),
        trains="adapters",
        exports="lora",
        unet_modules=tuple(config.target_modules or UNET_ATTENTION),
        adapter_rank=config.rank,
        text_encoder_learns=config.train_text_encoder,
        pocket_seconds_per_image_step=0.05,
    )


register(
    MethodSpec(
        name="lora",
        label="LoRA",
        summary="small add-on",
        config_class=LoraConfig,
        method_class="studio.train.methods.lora.method:LoraMethod",
        facts=facts,
        position=0,
        important=("variant", "rank", "alpha", "train_text_encoder"),
        choices={"variant": VARIANTS},
        monitor_fields=("variant", "rank", "alpha"),
        missing_trigger="The dataset has no trigger word: the LoRA changes everything it generates, not one concept.",
        caps={"rank": "max_lora_rank"},
    )
)
