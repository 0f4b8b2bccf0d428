"""SVDiff (spectral shifts): registered for the studio (registry.py)."""

from __future__ import annotations

from studio.train.methods.registry import MethodFacts, MethodSpec, register
from studio.train.methods.svdiff.config import SvdiffConfig


def facts(config: SvdiffConfig) -> MethodFacts:
    return MethodFacts(
        kind="svdiff",
        learning_rates=(1e-4, 1e-2),  # singular-value shifts: about 1000x a fine-tune's rate (the paper: 1e-3)
        trains="shifts",
        exports="weights",
        unet_modules=None,  # gradients flow through every shifted weight of the UNet
        text_encoder_learns=config.train_text_encoder,
        check_reloads_base=True,  # the shifts load into a fresh base model (their SVD is of the base weights)
        pocket_seconds_per_image_step=0.06,
    )


register(
    MethodSpec(
        name="svdiff",
        label="SVDiff (spectral shifts)",
        summary="a subject in a tiny file",
        config_class=SvdiffConfig,
        method_class="studio.train.methods.svdiff.method:SvdiffMethod",
        facts=facts,
        position=4,
        important=("target_modules", "train_text_encoder"),
        monitor_fields=("train_text_encoder",),
    )
)
