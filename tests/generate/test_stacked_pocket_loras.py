"""Two subject LoRAs trained on the pocket model, switched on together: each draws its own subject on its own prompt,
and a prompt naming neither stays the base model's (issue 18).

Six purple stars "zq" and six green hearts "vx" (shapes the pocket model never saw), each trained by the default
`lora-pocket` preset; both LoRAs on at weight 1 through the engine, as the Playground and `studio generate --lora A
--lora B` stack them; every sample judged on shape, colour and background. With the default (trigger-scoped)
stacking each prompt gets the LoRA whose trigger it says; the plain sum (`stacking="sum"`) breaks both subjects and
turns a red circle into a heart (BENCHMARKS.md: sum 0/8 star, 6/8 heart, 0/8 red circle; scoped 7/8, 8/8, 8/8).

Slow (two ~1 minute trainings on 2 cores, shared with the browser test through `two_subject_runs`).
"""

from __future__ import annotations

import pytest

SEEDS = 8


@pytest.mark.slow
def test_two_subject_loras_on_at_once_each_draw_their_own_subject_and_leave_the_world(two_subject_runs) -> None:
    from studio.generate import GenerationEngine, GenerationSettings
    from studio.pocket.concept import Concept, Probe
    from studio.pocket.evaluator import judge

    star, heart = Concept(), Concept(shape="heart", color="green", trigger="vx")
    loras = [{"path": str(two_subject_runs[c.trigger]), "weight": 1.0} for c in (star, heart)]
    engine = GenerationEngine(device="cpu")

    def right(probe: Probe, stacking: str = "scoped") -> int:
        settings = GenerationSettings(
            prompt=probe.prompt, seed=0, count=SEEDS, steps=20, loras=loras, fuse=True, stacking=stacking
        )
        judged = [judge(result.image) for result in engine.generate(settings)]
        print(probe.prompt, stacking, [(j.shape, j.color, j.background) for j in judged])
        return sum(j.matches(probe.shape, probe.color, probe.background) for j in judged)

    star_probe = Probe("star", star.caption(), "star", "purple", "black")
    heart_probe = Probe("heart", heart.caption(background="brown"), "heart", "green", "brown")  # a new background
    circle = Probe("drift", "a red circle on a black background", "circle", "red", "black")
    figures = {name: right(probe) for name, probe in (("star", star_probe), ("heart", heart_probe), ("drift", circle))}
    assert figures["star"] >= 5 and figures["heart"] >= 5 and figures["drift"] >= 6, figures
    # the plain sum is what scoping fixes: a prompt without either trigger gets both LoRAs and loses its circle
    assert right(circle, stacking="sum") <= 4
