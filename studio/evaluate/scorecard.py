"""The scorecard of a run: every checkpoint (and the base model) rendered on one fixed prompt set and scored.

`evaluate_run` is what `studio eval`, the UI and the tests call. The result is plain data (`Scorecard.to_dict`)
and is also written to `<run>/eval/scorecard.json`, so a page can show it without rendering again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from studio import runs
from studio.data.files import write_json_atomic
from studio.evaluate import prompts as prompt_sets
from studio.evaluate.embedding_metrics import EmbeddingJudge, embedding_scores
from studio.evaluate.pocket_metrics import pocket_scores, subject_signature, training_attributes
from studio.evaluate.render import (
    checkpoint_folder,
    checkpoint_steps,
    load_checkpoint_weights,
    load_run_pipeline,
    render_prompts,
)
from studio.evaluate.report import SCORECARD
from studio.evaluate.similarity import as_array, is_near_copy, nearest_training_image, pixel_distance
from studio.evaluate.subject import Subject, run_subject
from studio.evaluate.verdict import best_checkpoint, overfitting
from studio.paths import is_pocket_model


@dataclass
class CheckpointScore:
    step: int  # 0: the base model, before any training
    subject_fidelity: float | None
    prompt_fidelity: float | None
    prior_preservation: float | None
    memorisation: float | None  # share of trigger samples that are near-copies of a training image
    held_out: float | None  # fidelity on prompts never trained on (what overfitting lowers)
    prior_pixel_distance: float | None  # mean |tuned - base| on prompts without the trigger, pixels in [0, 1]
    train_loss: float | None  # mean training loss of the steps since the previous checkpoint
    details: dict = field(default_factory=dict)


@dataclass
class Scorecard:
    run_id: str
    judge: str  # "pocket" (exact, the shapes-world evaluator) or "clip" (CLIP-I / CLIP-T / DINO)
    subject: dict
    settings: dict
    checkpoints: list[CheckpointScore]
    overfitting: dict
    best: dict
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _window_losses(run_dir: Path, steps: list[int]) -> dict[int, float | None]:
    """Mean loss over the steps up to each checkpoint since the one before (diffusion losses are noisy)."""
    losses = runs.replay(run_dir).losses
    out, previous = {}, 0
    for step in steps:
        window = [loss for s, loss in losses if previous < s <= step]
        out[step] = float(np.mean(window)) if window else None
        previous = step
    return out


def loss_trend(run_dir: Path) -> tuple[float, float] | None:
    """Mean training loss over the first and the last quarter of the logged steps."""
    losses = [loss for _, loss in runs.replay(run_dir).losses]
    if len(losses) < 8:
        return None
    quarter = len(losses) // 4
    return float(np.mean(losses[:quarter])), float(np.mean(losses[-quarter:]))


def _memorisation(prompts, images, training: list[np.ndarray]) -> tuple[float | None, float | None]:
    """Share of trigger samples that are near-copies of a training image, and their mean nearest distance."""
    nearest = [
        nearest_training_image(as_array(image, training[0].shape[1::-1]), training)
        for prompt, image in zip(prompts, images)
        if prompt.group in ("subject", "context")
    ]
    if not nearest:
        return None, None
    return float(np.mean([is_near_copy(n) for n in nearest])), float(np.mean([n["pixels"] for n in nearest]))


def _held_out(scores: dict, pocket: bool) -> float | None:
    parts = [scores.get("prompt_fidelity")]
    if pocket:
        parts.append(scores.get("prior_prompt_accuracy"))
    parts = [p for p in parts if p is not None]
    return float(np.mean(parts)) if parts else None


def evaluate_run(
    run: str | Path,
    checkpoint: int | None = None,
    seeds: int = 2,
    steps: int | None = None,
    trigger: str | None = None,
    clip_model: str | Path | None = None,
    dino_model: str | Path | None = None,
    device: str = "cpu",
    save: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> Scorecard:
    """Score the base model and each checkpoint of a run (or only `checkpoint`) on the same prompts and seeds.

    On the pocket model the scores are exact (the shapes-world evaluator); on other models `clip_model` (a hub
    id or a folder) is required and `dino_model` is optional. `on_progress(done, total)` is called after each
    model rendered (the base model first), for a progress bar.
    """
    started = time.perf_counter()
    run_dir = runs.resolve_run(run)
    if seeds < 1:
        raise ValueError(f"seeds must be 1 or more, got {seeds}")
    available = checkpoint_steps(run_dir)
    if not available:
        raise ValueError(f"run {run_dir.name} has no checkpoint to evaluate yet")
    chosen = [checkpoint] if checkpoint is not None else available
    folders = {step: checkpoint_folder(run_dir, step) for step in chosen}  # a missing step fails before rendering

    subject = run_subject(run_dir, trigger)
    pipeline = load_run_pipeline(run_dir, device=device, steps=steps)
    base_model = json_config(run_dir)["training"]["base_model"]
    pocket = is_pocket_model(base_model)
    judge = None
    if pocket:
        trained = training_attributes(subject.images)
        signature = subject_signature(trained)
        prompt_set = prompt_sets.pocket_prompt_set(subject, trained, seeds)
    else:
        if not clip_model:
            raise ValueError(
                f"base model {base_model!r} is not the pocket model: pass a CLIP model (hub id or folder, e.g. "
                "openai/clip-vit-base-patch32) for CLIP-I / CLIP-T, and optionally a DINO model"
            )

        judge = EmbeddingJudge(clip_model, dino_model, device)
        signature = {}
        prompt_set = prompt_sets.real_prompt_set(subject, seeds)
    prompts = list(prompt_set.prompts)
    training = [as_array(Image.open(p), (pipeline.resolution, pipeline.resolution)) for p in subject.images]

    def score(step: int, images: list[Image.Image], base_images: list[Image.Image], loss: float | None):
        if pocket:
            scores = pocket_scores(prompts, images, base_images, signature)
        else:
            scores = embedding_scores(judge, prompts, images, base_images, list(subject.images))
        memorised, nearest = _memorisation(prompts, images, training)
        prior_pairs = [(i, b) for p, i, b in zip(prompts, images, base_images) if p.group == "prior"]
        distance = [pixel_distance(as_array(i), as_array(b)) for i, b in prior_pairs]
        held_out = _held_out(scores, pocket)
        core = ("subject_fidelity", "prompt_fidelity", "prior_preservation")
        return CheckpointScore(
            step,
            *(scores.pop(name) for name in core),
            memorisation=memorised,
            held_out=held_out,
            prior_pixel_distance=float(np.mean(distance)) if distance else None,
            train_loss=loss,
            details=scores | {"nearest_training_pixels": nearest},
        )

    report = on_progress or (lambda done, total: None)
    report(0, len(chosen) + 1)
    base_images = render_prompts(pipeline, prompts)
    results = [score(0, base_images, base_images, None)]
    report(1, len(chosen) + 1)
    losses = _window_losses(run_dir, available)
    for done, step in enumerate(chosen, start=2):
        load_checkpoint_weights(pipeline, folders[step])
        results.append(score(step, render_prompts(pipeline, prompts), base_images, losses.get(step)))
        report(done, len(chosen) + 1)

    card = Scorecard(
        run_id=run_dir.name,
        judge="pocket" if pocket else "clip",
        subject=_subject_dict(subject, signature),
        settings={"seeds": seeds, "steps": pipeline.steps, "prompts": len(prompts), "guidance": 6.0},
        checkpoints=results,
        overfitting=overfitting(results, loss_trend(run_dir)),
        best=best_checkpoint(results),
        seconds=round(time.perf_counter() - started, 1),
    )
    if save:
        write_scorecard(run_dir, card)
    return card


def json_config(run_dir: Path) -> dict:
    import yaml

    return yaml.safe_load((run_dir / runs.CONFIG).read_text(encoding="utf-8"))


def _subject_dict(subject: Subject, signature: dict) -> dict:
    return {
        "trigger": subject.trigger,
        "phrase": subject.phrase,
        "class_phrase": subject.class_phrase,
        "trained_prompts": list(subject.trained_prompts),
        "training_images": len(subject.images),
        "evaluator_sees": signature,
    }


def write_scorecard(run_dir: Path, card: Scorecard) -> Path:
    path = run_dir / "eval" / SCORECARD
    path.parent.mkdir(exist_ok=True)
    write_json_atomic(path, card.to_dict())
    return path
