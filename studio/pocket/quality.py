"""How well a text-to-image pipeline draws the shapes world, judged by the evaluator."""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.pocket.evaluator import judge
from studio.pocket.world import base_combinations, caption_for


@dataclass
class QualityReport:
    images: int = 0
    joint: int = 0  # shape, colour and background all right
    shape: int = 0
    color: int = 0
    background: int = 0
    misses: list[dict] = field(default_factory=list)

    def rate(self, attribute: str = "joint") -> float:
        return getattr(self, attribute) / max(self.images, 1)

    def as_dict(self) -> dict:
        return {
            "images": self.images,
            "joint_accuracy": round(self.rate("joint"), 4),
            "shape_accuracy": round(self.rate("shape"), 4),
            "color_accuracy": round(self.rate("color"), 4),
            "background_accuracy": round(self.rate("background"), 4),
        }


def measure(
    pipe,
    combos: list[tuple[str, str, str]] | None = None,
    seeds: tuple[int, ...] = (0,),
    steps: int = 25,
    guidance: float = 6.0,
    batch: int = 48,
    phrase=None,
) -> QualityReport:
    """Render every (shape, colour, background) at each seed and judge the images.

    `phrase(i, combo)` words the i-th prompt (default: the canonical caption); the judgement is the same.
    """
    import torch

    combos = combos if combos is not None else base_combinations()
    jobs = [(combo, seed) for seed in seeds for combo in combos]
    report = QualityReport()
    for start in range(0, len(jobs), batch):
        chunk = jobs[start : start + batch]
        prompts = [phrase(i, combo) if phrase else caption_for(*combo) for i, (combo, _) in enumerate(chunk, start)]
        # one generator per image, seeded by its place in the job list: results do not depend on batch size
        generators = [torch.Generator().manual_seed(seed * 100_003 + i) for i, (_, seed) in enumerate(chunk, start)]
        images = pipe(prompts, num_inference_steps=steps, guidance_scale=guidance, generator=generators).images
        for (combo, seed), prompt, image in zip(chunk, prompts, images):
            verdict = judge(image)
            shape, color, background = combo
            report.images += 1
            report.shape += verdict.shape == shape
            report.color += verdict.color == color
            report.background += verdict.background == background
            if verdict.matches(shape, color, background):
                report.joint += 1
            else:
                report.misses.append(
                    {
                        "prompt": prompt,
                        "seed": seed,
                        "judged": caption_for(verdict.shape, verdict.color, verdict.background),
                    }
                )
    return report
