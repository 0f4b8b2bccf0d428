"""Fast sampling: the shipped LCM-LoRA of the pocket model, the LCM sampler, 4 steps, no classifier-free guidance.

The Playground's "Fast (LCM, 4 steps)" switch and `studio generate --fast` both come here: `engine.fast_form_values` says
what the sampler / steps / guidance fields become, and the engine adds `pocket_lcm_lora()` to the stack while
`GenerationSettings.fast` is on. The LoRA comes from `studio distill lcm` (assets/pocket-lcm-lora/README.md).
"""

from __future__ import annotations

from studio.adapters.stack import LoraSpec
from studio.paths import POCKET_LCM_LORA_DIR

FAST_STEPS = 4
# the teacher's guidance is distilled into the LoRA: guidance 1 means no unconditional pass, half the UNet work
FAST_GUIDANCE = 1.0
FAST_MODELS = ("pocket",)  # the models a shipped LCM-LoRA exists for


def pocket_lcm_lora() -> LoraSpec:
    if not POCKET_LCM_LORA_DIR.is_dir():
        raise ValueError(f"the shipped LCM-LoRA is missing ({POCKET_LCM_LORA_DIR}); reinstall or run studio distill")
    return LoraSpec(path=str(POCKET_LCM_LORA_DIR))


def check_fast_model(model: str) -> None:
    if model not in FAST_MODELS:
        raise ValueError(
            f"fast mode ships an LCM-LoRA for the pocket model only, not {model!r}; for SD 1.5 add an LCM-LoRA "
            "as a LoRA (a file or folder with 'lcm' in its name is sampled with LCM automatically)"
        )
