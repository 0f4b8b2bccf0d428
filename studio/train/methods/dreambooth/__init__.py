"""DreamBooth (and DreamBooth-LoRA): registered for the studio (registry.py), with its own advice and subject."""

from __future__ import annotations

from studio.train.methods.dreambooth.config import DreamBoothConfig
from studio.train.methods.registry import MethodFacts, MethodSpec, SubjectWords, register


def facts(config: DreamBoothConfig) -> MethodFacts:
    shared = {
        "text_encoder_learns": config.train_text_encoder,
        "prior_preservation": config.with_prior_preservation,
        "draw_steps": config.class_image_steps,
    }
    if config.use_lora:
        return MethodFacts(
            kind="dreambooth_lora",
            label="DreamBooth LoRA",
            learning_rates=(1e-5, 3e-3),
            trains="adapters",
            exports="lora",
            unet_modules=tuple(config.lora_target_modules),
            adapter_rank=config.lora_rank,
            pocket_seconds_per_image_step=0.05,
            **shared,
        )
    return MethodFacts(
        kind="dreambooth",
        learning_rates=(1e-7, 5e-4),  # the full UNet: small rates (pocket's tiny UNet sits at the top)
        trains="model",
        exports="model",
        pocket_seconds_per_image_step=0.06,
        **shared,
    )


def advice(config: DreamBoothConfig) -> list[str]:
    if config.with_prior_preservation:
        return []
    return [
        "DreamBooth without prior preservation: the class word drifts towards your subject "
        "(every 'dog' becomes your dog). Turn on with_prior_preservation."
    ]


def subject(config: DreamBoothConfig, trigger: str | None) -> SubjectWords:
    return SubjectWords(
        trigger=trigger or config.trigger,
        phrase=config.instance_prompt,
        class_phrase=config.class_prompts[0],  # the first, when several share the class images
        prompts=(config.instance_prompt,),
    )


def class_images_to_draw(run_config) -> int:
    """Class images not drawn yet (they are cached per base model and prompt)."""
    config = run_config.method_config
    if not config.with_prior_preservation:
        return 0
    try:
        from studio.train.methods.dreambooth.method import class_images_dir

        have = 0
        for prompt, wanted in config.class_image_counts().items():
            folder = class_images_dir(run_config.training.base_model, prompt, run_config.training.resolution)
            have += min(wanted, len(list(folder.glob("*.png"))) if folder.is_dir() else 0)
        return max(0, config.num_class_images - have)
    except (OSError, TypeError, ValueError):  # an unreadable cache: assume all are drawn
        return config.num_class_images


register(
    MethodSpec(
        name="dreambooth",
        label="DreamBooth",
        summary="a subject",
        config_class=DreamBoothConfig,
        method_class="studio.train.methods.dreambooth.method:DreamBoothMethod",
        facts=facts,
        position=1,
        important=(
            "trigger",
            "instance_prompt",
            "class_prompt",
            "with_prior_preservation",
            "num_class_images",
            "use_lora",
        ),
        monitor_fields=("trigger", "with_prior_preservation", "use_lora"),
        trigger_field="trigger",
        missing_trigger=(
            "The dataset has no trigger word, and this preset takes DreamBooth's trigger from it: set one on the "
            "dataset, or type the trigger and instance prompt."
        ),
        advice=advice,
        subject=subject,
        images_to_draw=class_images_to_draw,
        caps={
            "lora_rank": "max_lora_rank",
            "num_class_images": "max_class_images",
            "class_image_steps": "max_sample_steps",
        },
    )
)
