"""Textual Inversion: registered for the studio (registry.py); its placeholder token is what prompts use."""

from __future__ import annotations

from studio.train.methods.registry import MethodFacts, MethodSpec, SubjectWords, register
from studio.train.methods.textual_inversion.config import LEARNABLE_PROPERTIES, TextualInversionConfig


def facts(config: TextualInversionConfig) -> MethodFacts:
    return MethodFacts(
        kind="textual_inversion",
        learning_rates=(1e-4, 1e-2),
        trains="embeddings",
        exports="weights",
        unet_modules=(),  # no UNet weight takes a gradient
        embedding_vectors=config.num_vectors,
        text_encoder_learns=True,  # the new rows learn through the text encoder, every step
        pocket_seconds_per_image_step=0.04,
    )


def subject(config: TextualInversionConfig, trigger: str | None) -> SubjectWords:
    trigger = trigger or config.placeholder_token
    return SubjectWords(trigger, trigger, config.initializer_token, (f"a photo of a {trigger}",))


register(
    MethodSpec(
        name="textual_inversion",
        label="Textual Inversion",
        summary="one new word",
        config_class=TextualInversionConfig,
        method_class="studio.train.methods.textual_inversion.method:TextualInversionMethod",
        facts=facts,
        position=2,
        important=("placeholder_token", "initializer_token", "num_vectors", "learnable_property"),
        choices={"learnable_property": LEARNABLE_PROPERTIES},
        monitor_fields=("placeholder_token", "num_vectors"),
        trigger_field="placeholder_token",
        subject=subject,
    )
)
