"""Trigger-scoped stacking: a LoRA taught with a trigger word acts on the prompts that say that word.

Why: two LoRAs that each teach a new subject, switched on together and summed (what `set_adapters` does, and what
every UI that stacks LoRAs does by default), act on every prompt at once. On the pocket model the sum of two such
LoRAs draws neither subject right and turns a red circle into a ring (BENCHMARKS.md, "Stacked LoRAs"). The field's
answers act where a trigger's tokens attend: regional and attention-masked LoRA, AUTOMATIC1111's Composable LoRA.
With one subject per prompt that comes down to this: a LoRA whose trigger word is in the prompt is on, one whose
trigger is not is off (still loaded: switching costs nothing), and a LoRA with no known trigger (a style trained on
plain captions) stays on for every prompt. `stacking="sum"` switches scoping off: every enabled LoRA, always.

Where a LoRA's trigger comes from, first found wins: the stack entry's own `trigger`; the file's
`modelspec.trigger_phrase` metadata (what kohya sd-scripts, Civitai and ComfyUI's LoRA loaders read); for a run's
export or checkpoint, the run's DreamBooth trigger, its dataset's trigger word, or the one made-up word every
training caption holds.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from studio.adapters.stack import LoraSpec, lora_source
from studio.data.trigger import has_trigger
from studio.runs import CONFIG, DATASET
from studio.runs.names import identity

STACKING_MODES = ("composite", "scoped", "sum")
METADATA_KEY = "modelspec.trigger_phrase"  # the SAI model-spec field other tools read trigger words from


def scope_to_prompt(specs: list[LoraSpec], prompt: str) -> list[LoraSpec]:
    """`specs` with every LoRA whose trigger words are known but absent from `prompt` switched off."""
    scoped = []
    for spec in specs:
        words = lora_triggers(spec)
        if spec.enabled and words and not any(has_trigger(prompt, word) for word in words):
            spec = replace(spec, enabled=False)
        scoped.append(spec)
    return scoped


def lora_triggers(spec: LoraSpec) -> tuple[str, ...]:
    """The words that switch `spec` on; empty: none known, so it is always on."""
    if spec.trigger.strip():
        return tuple(w.strip() for w in spec.trigger.split(",") if w.strip())
    if spec.is_lcm:
        return ()  # a sampler's LoRA, not a subject
    try:
        source = lora_source(spec.path)
    except (FileNotFoundError, ValueError):
        return ()  # loading the stack says what is wrong with the path
    stat = (source / "trainable.safetensors" if source.is_dir() else source).stat()
    return _triggers_of(str(source.resolve()), stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _triggers_of(source: str, _modified: int) -> tuple[str, ...]:
    path = Path(source)
    if path.is_file() and path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(source, "pt") as stream:
            phrase = (stream.metadata() or {}).get(METADATA_KEY, "")
        if phrase.strip():
            return tuple(w.strip() for w in phrase.split(",") if w.strip())
    run_dir = _run_folder(path)
    trigger = run_trigger(run_dir) if run_dir else None
    return (trigger,) if trigger else ()


def _run_folder(path: Path) -> Path | None:
    """The run a LoRA belongs to: the run folder itself, a checkpoint's run, or the run an export sits in."""
    for folder in [path, *list(path.parents)[:4]]:
        if (folder / CONFIG).is_file() and (folder / DATASET).is_file():
            return folder
    return None


def run_trigger(run_dir: Path) -> str | None:
    """The word a run taught, as its name record says (DreamBooth's trigger, the dataset's, or the captions')."""
    return identity(run_dir).trigger
