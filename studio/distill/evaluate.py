"""Few-step LCM sampling against the model's default sampler, judged by the pocket evaluator."""

from __future__ import annotations

from dataclasses import dataclass

from studio.generate.fast import FAST_GUIDANCE, FAST_STEPS
from studio.generate.samplers import make_scheduler
from studio.pocket.quality import QualityReport, measure


@dataclass
class FastSamplingComparison:
    reference: QualityReport  # default sampler, default steps and guidance
    fast: QualityReport  # LCM scheduler + the LCM-LoRA, few steps

    @property
    def margin(self) -> float:
        """How many points of joint accuracy the fast sampler loses (negative: it gains)."""
        return self.reference.rate() - self.fast.rate()


def measure_lcm(pipe, lora_path: str, combos, seeds, steps: int = FAST_STEPS, guidance: float = FAST_GUIDANCE):
    """Joint accuracy of `pipe` with the LCM-LoRA loaded and the LCM scheduler; the pipeline is restored after."""
    original = pipe.scheduler
    pipe.load_lora_weights(lora_path, adapter_name="lcm_eval")
    try:
        pipe.scheduler = make_scheduler("lcm", original)
        return measure(pipe, combos, seeds=seeds, steps=steps, guidance=guidance)
    finally:
        pipe.delete_adapters("lcm_eval")
        pipe.scheduler = original


def compare_fast_sampling(
    pipe, lora_path: str, combos, seeds, reference_steps: int = 25, reference_guidance: float = 6.0, **fast
) -> FastSamplingComparison:
    """The same prompts and seeds with the default sampler (25 steps) and with the LCM-LoRA (4 steps)."""
    reference = measure(pipe, combos, seeds=seeds, steps=reference_steps, guidance=reference_guidance)
    return FastSamplingComparison(reference, measure_lcm(pipe, lora_path, combos, seeds, **fast))
