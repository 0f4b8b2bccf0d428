"""DreamBooth (Ruiz et al. 2022) with prior preservation, and DreamBooth-LoRA: a typed config with strict validation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from studio.train.config import MAX_LORA_RANK, MAX_SAMPLE_STEPS, at_most, check_numbers, non_negative, positive
from studio.train.methods.lora.config import UNET_ATTENTION

MAX_CLASS_IMAGES = 10_000  # each one is drawn once by the base model and cached as a file


def has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None


@dataclass
class DreamBoothConfig:
    trigger: str = field(
        default="sks",
        metadata={
            "help": "The rare word that will mean your subject (e.g. 'sks'); it must be in the instance prompt. "
            "<trigger> (here and in the instance prompt) takes the dataset's trigger word at the start."
        },
    )
    instance_prompt: str = field(
        default="a photo of sks dog",
        metadata={"help": "The prompt for every instance image: trigger + class noun, e.g. 'a photo of sks dog'."},
    )
    class_prompt: str = field(
        default="a photo of a dog",
        metadata={
            "help": "The same prompt without the trigger, e.g. 'a photo of a dog': what prior images show. Several "
            "prompts separated by | share the class images evenly ('a circle | a square'): each keeps what it draws."
        },
    )
    with_prior_preservation: bool = field(
        default=True,
        metadata={"help": "Also train on class images so the class ('a dog') keeps its meaning (no language drift)."},
    )
    prior_loss_weight: float = field(
        default=1.0,
        metadata={
            "help": "Weight of the class half's loss (1.0 is the paper's and diffusers' default). Higher keeps the "
            "rest of the model more as it was and learns the subject a little less well."
        },
    )
    num_class_images: int = field(
        default=100,
        metadata={"help": "Class images to use; missing ones are generated once with the base model and cached."},
    )
    class_image_steps: int = field(
        default=25, metadata={"help": "Denoising steps when generating class images with the base model."}
    )
    class_guidance_scale: float = field(
        default=7.5, metadata={"help": "Classifier-free guidance when generating class images."}
    )
    train_text_encoder: bool = field(
        default=False,
        metadata={"help": "Also fine-tune the text encoder (better faces/subjects, more memory; no cached text)."},
    )
    use_lora: bool = field(
        default=False,
        metadata={"help": "DreamBooth-LoRA: the same loss, but train LoRA adapters instead of the full UNet."},
    )
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(UNET_ATTENTION),
        metadata={"help": "With use_lora: UNet modules that get an adapter (default: the attention projections)."},
    )
    use_captions: bool = field(
        default=False,
        metadata={
            "help": "Train each instance image with its own caption (each must contain the trigger) instead of "
            "instance_prompt: captions that name what else is in the picture keep it out of the trigger."
        },
    )
    lora_rank: int = field(default=16, metadata={"help": "With use_lora: rank of the LoRA update."})
    lora_alpha: float = field(default=16.0, metadata={"help": "With use_lora: the update is scaled by alpha / rank."})

    def __post_init__(self) -> None:
        check_numbers(self)
        positive(self, "num_class_images", "class_image_steps", "lora_rank", "lora_alpha")
        at_most(self, "num_class_images", MAX_CLASS_IMAGES)
        at_most(self, "class_image_steps", MAX_SAMPLE_STEPS)
        at_most(self, "lora_rank", MAX_LORA_RANK)
        non_negative(self, "prior_loss_weight", "class_guidance_scale")
        for name in ("num_class_images", "class_image_steps", "lora_rank"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"{name} must be an integer, got {getattr(self, name)!r}")
        modules = self.lora_target_modules
        if not isinstance(modules, list) or not modules or not all(isinstance(m, str) and m for m in modules):
            raise ValueError("lora_target_modules must be a non-empty list of module names")
        for name in ("trigger", "instance_prompt", "class_prompt"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"{name} must be a non-empty string")
        if re.search(r"\s", self.trigger.strip()):
            raise ValueError(f"trigger must be one word, got {self.trigger!r}")
        if not has_word(self.instance_prompt, self.trigger):
            raise ValueError(f"instance_prompt must contain the trigger {self.trigger!r}, got {self.instance_prompt!r}")
        prompts = self.class_prompts
        if len(prompts) != len(self.class_prompt.split("|")):
            raise ValueError(f"class_prompt has an empty prompt between its | separators: {self.class_prompt!r}")
        for prompt in prompts:
            if has_word(prompt, self.trigger):
                raise ValueError(f"class_prompt must not contain the trigger {self.trigger!r}, got {prompt!r}")
        if len(prompts) > self.num_class_images:
            raise ValueError(
                f"{len(prompts)} class prompts need at least as many class images; num_class_images is "
                f"{self.num_class_images}"
            )

    @property
    def class_prompts(self) -> list[str]:
        """The class prompt, or the several separated by |."""
        return [prompt.strip() for prompt in self.class_prompt.split("|") if prompt.strip()]

    def class_image_counts(self) -> dict[str, int]:
        """How many of the num_class_images each class prompt gets: an even split, the first ones one more."""
        prompts = self.class_prompts
        share, extra = divmod(self.num_class_images, len(prompts))
        return {prompt: share + (index < extra) for index, prompt in enumerate(prompts)}
