"""LoRA Composite: several LoRAs on one prompt, each predicting the noise on its own, the predictions averaged.

Why: summing two LoRAs' weight updates (what `set_adapters` does) adds two changes that were each trained against
the base model alone; on the pocket model a star LoRA plus a pink-colour LoRA summed draw purple blobs, not a pink
star (BENCHMARKS.md, "Stacked LoRAs"). Zhong et al., "Multi-LoRA Composition for Image Generation" (2024), keep
the LoRAs apart instead: at every denoising step each LoRA alone predicts the noise (unconditional and conditional
halves of classifier-free guidance alike), and the guided predictions are averaged. Guidance is linear, so
averaging the UNet's outputs over the LoRAs is the same as averaging the guided ones.

Cost: one UNet pass per LoRA per step, so two LoRAs cost about twice the base model; the weights cannot be fused
while it runs. Only the UNet is composed: LoRAs on the text encoder stay summed there (the prompt is encoded once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def composite_unet(pipe: Any, members: list[tuple[str, float]], rescale: Callable[[str], None]) -> Iterator[None]:
    """While inside, `pipe.unet` averages the predictions of each (adapter name, weight) in `members` alone.

    `rescale(name)` re-applies what `set_adapters` does not know (the stack's per-block weights) for that adapter.
    Nothing changes with fewer than two members."""
    if len(members) < 2:
        yield
        return
    unet = pipe.unet
    original = unet.forward

    def forward(*args, **kwargs):
        outputs = []
        for name, weight in members:
            unet.set_adapters([name], weights=[weight])
            rescale(name)
            outputs.append(original(*args, **kwargs))
        return _mean(outputs)

    unet.forward = forward  # an instance attribute: the class's forward is untouched for everyone else
    try:
        yield
    finally:
        del unet.forward
        unet.set_adapters([name for name, _ in members], weights=[weight for _, weight in members])
        for name, _ in members:
            rescale(name)


def _mean(outputs: list) -> Any:
    first = outputs[0]
    if isinstance(first, tuple):  # return_dict=False: (sample,)
        return (sum(o[0] for o in outputs) / len(outputs), *first[1:])
    first.sample = sum(o.sample for o in outputs) / len(outputs)  # a UNet2DConditionOutput
    return first
