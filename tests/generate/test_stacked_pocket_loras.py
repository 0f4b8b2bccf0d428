"""Two LoRAs trained on the pocket model, a star shape and a pink colour, stacked: the image shows both.

They compose the way LoRAs on big models do, through words: the star LoRA learns the trigger "zq" from captions
that also name each star's colour ("a green zq on a black background"), so the colour word before "zq" stays a
colour; the pink LoRA learns the word "pink" from base shapes ("a pink circle on a black background"), a colour the
pocket model never drew. "a pink zq on a black background" then asks each LoRA for its own word. At full weight the
two together overshoot (pink blobs); at 0.8 each they draw pink stars (figures in BENCHMARKS.md).

Slow (two ~1 minute trainings on 2 cores); the evaluator judges over several seeds.
"""

from __future__ import annotations

import pytest

from studio.paths import POCKET_MODEL_DIR

SEEDS = range(8)
WEIGHTS = (0.8, 0.8)  # star, pink
STEPS = {"star": "300", "pink": "200"}
# Lighter than `lora-pocket` (no shortcut, sampler, in/out convolutions or attention in/out projections; min-SNR 5,
# not 2): adapters tuned to draw one concept as well as possible add up worse. With these settings 7 of 8 stacked
# images are pink stars; with the preset's (95 % stars alone) 3 of 8 at 0.8 / 0.8 and 4 at 0.9 / 0.9 (2026-11-23,
# BENCHMARKS.md).
TARGETS = "[to_q, to_k, to_v, to_out.0, conv1, conv2, ff.net.0.proj, ff.net.2]"


def _train(tmp_path, name: str, folder, prompt: str, **overrides) -> str:
    from studio.train.config import resolve_config
    from studio.train.loop import run_training
    from studio.train.start import create_run

    settings = {
        "sample_every": "0",
        "checkpoint_every": "0",
        "sample_prompts": f"[{prompt}]",
        "target_modules": TARGETS,
        "min_snr_gamma": "5",
    }
    settings |= overrides
    config = resolve_config("lora-pocket", overrides=settings)
    run_dir = create_run(config, folder, run_id=name, root=tmp_path / "runs")
    assert run_training(run_dir) == "finished"
    return str(run_dir)


@pytest.mark.slow
@pytest.mark.skipif(not (POCKET_MODEL_DIR / "model_index.json").is_file(), reason="the pocket model is not built yet")
@pytest.mark.xfail(
    run=False,  # two trainings (~2 minutes of CI) for a known failure; issue 18 runs it again
    reason="pocket model v2 (issue 17): the star and pink LoRAs no longer compose (0 of 8 pink stars with these "
    "targets, with the preset's at four weight pairs, and with an attention-only pink LoRA; BENCHMARKS.md). "
    "Stacking that composes is issue 18; remove this marker when it draws pink stars again.",
)
def test_a_star_lora_and_a_pink_lora_stacked_draw_a_pink_star(tmp_path) -> None:
    from studio.generate import GenerationEngine, GenerationSettings
    from studio.pocket.evaluator import judge
    from studio.train.pocket_concept import write_color_folder, write_concept_folder

    star_folder = write_concept_folder(tmp_path / "star", "star", "zq", name_colour=True)
    pink_folder = write_color_folder(tmp_path / "pink", "pink", trigger="pink")
    star = _train(tmp_path, "star", star_folder, "a red zq on a black background", steps=STEPS["star"])
    pink = _train(tmp_path, "pink", pink_folder, "a pink circle on a black background", steps=STEPS["pink"])

    engine = GenerationEngine(device="cpu")

    def judged(prompt: str, loras: list[dict]) -> list:
        out = []
        for seed in SEEDS:
            settings = GenerationSettings(prompt=prompt, seed=seed, steps=20, loras=loras, fuse=True)
            out.append(judge(engine.generate(settings)[0].image))
        return out

    prompt = "a pink zq on a black background"
    stacked = judged(prompt, [{"path": star, "weight": WEIGHTS[0]}, {"path": pink, "weight": WEIGHTS[1]}])
    both = sum(j.shape == "star" and j.color == "pink" for j in stacked)
    print(f"stacked: {both} of {len(SEEDS)} pink stars: {[(j.shape, j.color) for j in stacked]}")
    # neither LoRA alone (at its weight in the stack) draws a pink star: it takes the two
    for path, weight in zip((star, pink), WEIGHTS):
        alone = judged(prompt, [{"path": path, "weight": weight}])
        assert not any(j.shape == "star" and j.color == "pink" for j in alone), [(j.shape, j.color) for j in alone]
    assert both >= 4, f"{both} of {len(SEEDS)} stacked images are pink stars: {[(j.shape, j.color) for j in stacked]}"
