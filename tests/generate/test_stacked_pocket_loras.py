"""Two LoRAs trained on the pocket model, a star shape and a pink colour, stacked: the image shows both.

The star LoRA learns the trigger "zq" from captions that name no colour ("a zq on a black background"); the pink
LoRA is a style LoRA without a trigger, trained on base shapes whose captions name no colour either, so it makes
whatever is drawn pink. One prompt, "a zq on a black background", is then in the training distribution of both.
(A colour trigger, "a vv zq", was measured too: 0 pink stars in 8, since neither LoRA ever saw the other's word.)

Slow (two ~1 minute trainings on 2 cores); the evaluator judges over several seeds. The pocket LoRA preset is still
being tuned (issue 4), so the threshold is tolerant; the figure measured is in BENCHMARKS.md.
"""

from __future__ import annotations

import pytest

from studio.paths import POCKET_MODEL_DIR

SEEDS = range(8)
WEIGHTS = (1.0, 1.0)  # star, pink
STEPS = {"star": "300", "pink": "200"}


def _train(tmp_path, name: str, folder, prompt: str, **overrides) -> str:
    from studio.train.config import resolve_config
    from studio.train.loop import run_training
    from studio.train.start import create_run

    settings = {"sample_every": "0", "checkpoint_every": "0", "sample_prompts": f"[{prompt}]"} | overrides
    config = resolve_config("lora-pocket", overrides=settings)
    run_dir = create_run(config, folder, run_id=name, root=tmp_path / "runs")
    assert run_training(run_dir) == "finished"
    return str(run_dir)


@pytest.mark.slow
@pytest.mark.goal
@pytest.mark.xfail(
    reason="issue 7, 2026-11-23: stacked, 0 of 8 images were pink stars, with text-encoder adapters (star alone 3 of "
    "8 stars, pink alone 6 of 6 pink) and again with the UNet-only rank-16 preset (stacked at 1.0/1.0: 7 of 8 "
    "green blobs the evaluator cannot name). Two UNet-wide LoRAs at full weight add up out of distribution.",
    strict=False,
)
@pytest.mark.skipif(not (POCKET_MODEL_DIR / "model_index.json").is_file(), reason="the pocket model is not built yet")
def test_a_star_lora_and_a_pink_lora_stacked_draw_a_pink_star(tmp_path) -> None:
    from studio.generate import GenerationEngine, GenerationSettings
    from studio.pocket.evaluator import judge
    from studio.train.pocket_concept import write_color_folder, write_concept_folder

    star_folder = write_concept_folder(tmp_path / "star", "star", "zq")
    pink_folder = write_color_folder(tmp_path / "pink", "pink", trigger="")
    star = _train(tmp_path, "star", star_folder, "a zq on a black background", steps=STEPS["star"])
    # the pink LoRA learns on top of the star LoRA (merged into its base), so the two stacked are what it trained on
    pink = _train(
        tmp_path, "pink", pink_folder, "a circle on a black background", steps=STEPS["pink"], base_loras=f"[{star}]"
    )

    engine = GenerationEngine(device="cpu")

    def judged(prompt: str, loras: list[dict]) -> list:
        out = []
        for seed in SEEDS:
            settings = GenerationSettings(prompt=prompt, seed=seed, steps=20, loras=loras, fuse=True)
            out.append(judge(engine.generate(settings)[0].image))
        return out

    prompt = "a zq on a black background"
    stacked = judged(prompt, [{"path": star, "weight": WEIGHTS[0]}, {"path": pink, "weight": WEIGHTS[1]}])
    both = sum(j.shape == "star" and j.color == "pink" for j in stacked)
    print(f"stacked: {both} of {len(SEEDS)} pink stars: {[(j.shape, j.color) for j in stacked]}")
    # neither LoRA alone draws a pink star: it takes the stack
    for alone in ([{"path": star}], [{"path": pink}]):
        assert not any(j.shape == "star" and j.color == "pink" for j in judged(prompt, alone))
    assert both >= 2, f"{both} of {len(SEEDS)} stacked images are pink stars: {[(j.shape, j.color) for j in stacked]}"
