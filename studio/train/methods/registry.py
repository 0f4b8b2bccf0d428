"""The registry of training methods: each method's folder says who it is, once, and every consumer reads it here.

As peft's tuners do (`register_peft_method` in each `tuners/<name>/__init__.py` fills PEFT_TYPE_TO_CONFIG_MAPPING
and its siblings), every `studio/train/methods/<name>/__init__.py` calls `register(MethodSpec(...))`. The spec is
torch-free: its config class, where its method class lives (imported only when a run starts), its form sections,
the settings a watcher sees, its usual learning rates, its own advice, what it trains and writes (for the
estimate), how the scorecard reads its subject and the workspace's caps on its sizes. The CLI, the Train form,
the advice, the estimate, the monitor, the scorecard and the workspace read from here, so adding a method is its
folder and a preset.

Discovery imports every subpackage of studio.train.methods on the first lookup (not at import: no import-time
side effects); `register` also takes a method from elsewhere (a test's toy method).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

RESERVED_NAMES = ("training", "version", "method", "description")  # a config's other top-level keys
TRAINS = ("model", "adapters", "embeddings", "shifts", "values")
EXPORTS = ("model", "lora", "weights")


@dataclass(frozen=True)
class MethodFacts:
    """What a configured method trains and writes: the numbers the advice and the estimate (estimate.py) use."""

    kind: str  # what measured runs are compared by ("dreambooth_lora" apart from "dreambooth")
    learning_rates: tuple[float, float]  # the usual range (low, high); far outside it the advice warns
    # what learns: "model" (the whole UNet, the text encoder too when text_encoder_learns), "adapters" (low-rank
    # adapters on unet_modules), "embeddings" (embedding_vectors new token rows), "shifts" (one per singular value),
    # "values" (trained_values numbers, whatever the model's size)
    trains: str
    # what outputs/ gets: "model" (a pipeline folder: the whole model), "lora" (LoRA files, each checked by loading
    # it beside the trained adapter), "weights" (a file of the trained values only)
    exports: str
    unet_modules: tuple[str, ...] | None = None  # the UNet modules whose weights take gradients; None: all, (): none
    adapter_rank: int = 0
    embedding_vectors: int = 0
    trained_values: int = 0
    text_encoder_learns: bool = False  # the text encoder runs forward and backward every step (no cached text)
    prior_preservation: bool = False  # each batch holds a class image beside every instance image
    draw_steps: int = 0  # denoising steps of each image the run draws before training (DreamBooth's class images)
    keeps_average: bool = False  # an averaged copy of the UNet in float32 (EMA)
    check_reloads_base: bool = False  # the quick export check loads a fresh base model (a file not checked in place)
    pocket_seconds_per_image_step: float = 0.05  # measured on the pocket model, 64 px, 2-core CPU
    label: str = ""  # how a run of this configuration reads ("DreamBooth LoRA"); empty: the method's own label

    def __post_init__(self) -> None:
        if self.trains not in TRAINS:
            raise ValueError(f"trains must be one of {', '.join(TRAINS)}, got {self.trains!r}")
        if self.exports not in EXPORTS:
            raise ValueError(f"exports must be one of {', '.join(EXPORTS)}, got {self.exports!r}")
        low, high = self.learning_rates
        if not 0 < low <= high:
            raise ValueError(f"learning_rates must be (low, high) with 0 < low <= high, got {self.learning_rates}")


@dataclass(frozen=True)
class SubjectWords:
    """How a run's prompts name what it learnt (the scorecard's subject, less its images). The scorecard reads the
    noun phrase of `phrase` and `class_phrase` ('a photo of sks dog' -> 'sks dog'), so a prompt may stand for one."""

    trigger: str
    phrase: str  # "a photo of sks dog", "<concept>"
    class_phrase: str | None  # the same without the trigger ("a photo of a dog"), when the run says
    prompts: tuple[str, ...]  # the prompts the subject was trained with


@dataclass(frozen=True)
class MethodSpec:
    """A training method as the studio knows it, without importing torch. Only name, label, config_class,
    method_class and facts are required; the rest defaults to "nothing special"."""

    name: str  # the config's `method:` and its section's key
    label: str  # what people read: "LoRA", "Textual Inversion"
    config_class: type  # the method's config dataclass (fields with defaults and help)
    method_class: str  # "package.module:Class", imported when a run starts (it imports torch)
    facts: Callable[[Any], MethodFacts]  # method config -> what it trains and writes
    summary: str = ""  # what it is for, in a few words ("a subject", "one new word"): the Train form's method hint
    position: int = 100  # where lists (the CLI's help, the Train form's dropdown) show it: smaller first
    # the Train form: fields shown up front (in the config's field order; the rest sit under Advanced), and the
    # values a field's dropdown offers
    important: tuple[str, ...] = ()
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    monitor_fields: tuple[str, ...] = ()  # the settings a watcher of a run sees beside the shared ones
    # the config field holding the word that calls up what was learnt (DreamBooth's trigger, Textual Inversion's
    # placeholder token); None: the dataset's trigger word
    trigger_field: str | None = None
    missing_trigger: str | None = None  # the advice's sentence when no trigger word is found (None: no warning)
    advice: Callable[[Any], list[str]] | None = None  # method config -> its own risky-settings sentences
    # (method config, the trigger asked for or None) -> how prompts name the subject; None: the dataset's trigger
    subject: Callable[[Any, str | None], SubjectWords] | None = None
    # run config -> images drawn before training that are not cached yet (DreamBooth's class images)
    images_to_draw: Callable[[Any], int] | None = None
    # config field -> the PublicLimits field that caps it in a public workspace ("rank": "max_lora_rank")
    caps: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name) or self.name in RESERVED_NAMES:
            raise ValueError(f"a method's name is a lowercase identifier other than {RESERVED_NAMES}: {self.name!r}")
        if not dataclasses.is_dataclass(self.config_class):
            raise ValueError(f"{self.name}: config_class must be a dataclass, got {self.config_class!r}")
        if not re.fullmatch(r"[\w.]+:\w+", self.method_class):
            raise ValueError(f"{self.name}: method_class must be 'package.module:Class', got {self.method_class!r}")
        own = {f.name for f in dataclasses.fields(self.config_class)}
        named = [*self.important, *self.choices, *self.monitor_fields, *self.caps]
        named += [self.trigger_field] if self.trigger_field else []
        unknown = sorted(set(named) - own)
        if unknown:
            raise ValueError(f"{self.name}: {self.config_class.__name__} has no field(s) {', '.join(unknown)}")

    def load_method_class(self) -> type:
        """The method's class (this imports its method.py, and torch)."""
        module, _, name = self.method_class.partition(":")
        return getattr(importlib.import_module(module), name)


_methods: dict[str, MethodSpec] = {}
_discovered = False


def register(spec: MethodSpec, replace: bool = False) -> MethodSpec:
    """Add a method; a second method of the same name is refused unless `replace`."""
    known = _methods.get(spec.name)
    if known is not None and known != spec and not replace:
        raise ValueError(f"a method named {spec.name!r} is registered already ({known.method_class})")
    _methods[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a method registered by hand (a test's toy method)."""
    _methods.pop(name, None)


def discover() -> None:
    """Import every subpackage of studio.train.methods once: each registers itself in its __init__.py."""
    global _discovered
    if _discovered:
        return
    _discovered = True  # first: a method importing the registry while it is discovered does not start again
    package = importlib.import_module("studio.train.methods")
    for module in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
        if module.ispkg:
            importlib.import_module(module.name)


def methods() -> dict[str, MethodSpec]:
    """Every registered method by name, in the order lists show them."""
    discover()
    ordered = sorted(enumerate(_methods.values()), key=lambda pair: (pair[1].position, pair[0]))
    return {spec.name: spec for _, spec in ordered}


def method_names() -> tuple[str, ...]:
    return tuple(methods())


def get(name: str) -> MethodSpec:
    known = methods()
    if name not in known:
        raise ValueError(f"method must be one of {', '.join(known)}, got {name!r}")
    return known[name]


def facts(config: Any) -> MethodFacts:
    """What a run's method (a RunConfig's) trains and writes."""
    return get(config.method).facts(config.method_config)
