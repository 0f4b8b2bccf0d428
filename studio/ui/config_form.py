"""A training form generated from the config dataclasses: one component per field, its help text beside it.

The fields that matter most to a first run are shown up front; the rest sit under "Advanced". Values go back into
a `RunConfig` through the same strict loader the CLI uses, so the form can never build a config the CLI would not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import gradio as gr

from studio.train.config import (
    CONFIG_VERSION,
    LR_SCHEDULERS,
    MIXED_PRECISION,
    OPTIMIZERS,
    RunConfig,
    TrainingConfig,
    config_from_dict,
    method_config_class,
)
from studio.train.methods import methods

TRAINING_IMPORTANT = (
    "base_model",
    "steps",
    "learning_rate",
    "batch_size",
    "resolution",
    "sample_every",
    "sample_prompts",
)
TRAINING_CHOICES = {
    "lr_scheduler": LR_SCHEDULERS,
    "mixed_precision": MIXED_PRECISION,
    "optimizer": OPTIMIZERS,
    "device": ("auto", "cpu", "cuda"),
}


class _Sections(Mapping):
    """A live view of the registered methods (studio/train/methods/registry.py), read on every use, so a method
    registered after this module was imported is offered too. `pick` says what each section shows."""

    def __init__(self, training, pick) -> None:
        self.training, self.pick = training, pick

    def _all(self) -> dict:
        return ({} if self.training is None else {"training": self.training}) | {
            name: self.pick(spec) for name, spec in methods().items()
        }

    def __getitem__(self, key: str):
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


METHODS: Mapping[str, str] = _Sections(None, lambda spec: spec.label)  # method -> what the dropdown shows
IMPORTANT: Mapping[str, tuple[str, ...]] = _Sections(TRAINING_IMPORTANT, lambda spec: spec.important)
CHOICES: Mapping[str, Mapping[str, tuple[str, ...]]] = _Sections(TRAINING_CHOICES, lambda spec: spec.choices)


def method_hints() -> str:
    """The method dropdown's hint: 'LoRA: small add-on · DreamBooth: a subject · …', from each method's summary."""
    return " · ".join(f"{spec.label}: {spec.summary}" for spec in methods().values() if spec.summary)


def section_class(section: str) -> type:
    return TrainingConfig if section == "training" else method_config_class(section)


def label(name: str) -> str:
    return name.replace("_", " ").capitalize().replace("Lr ", "LR ").replace("Snr", "SNR").replace("loras", "LoRAs")


@dataclass(frozen=True)
class FieldSpec:
    section: str
    name: str
    kind: str  # "bool", "int", "float", "list", "str"
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"


def field_specs(section: str) -> list[FieldSpec]:
    choices = CHOICES[section]
    specs = []
    for f in dataclasses.fields(section_class(section)):
        kind = str(f.type)
        kind = "list" if kind.startswith("list") else kind if kind in ("bool", "int", "float") else "str"
        specs.append(FieldSpec(section, f.name, kind, f.metadata.get("help", ""), choices.get(f.name)))
    return specs


def to_form_value(spec: FieldSpec, value):
    return "\n".join(value) if spec.kind == "list" else value


def from_form_value(spec: FieldSpec, value):
    """A component's value in the field's type; empty numbers are refused with the field's name."""
    if spec.kind == "list":
        return [line.strip() for line in str(value or "").splitlines() if line.strip()]
    if spec.kind in ("int", "float"):
        if value is None or value == "":
            raise ValueError(f"{label(spec.name)} is empty")
        if spec.kind == "int":
            if float(value) != int(float(value)):
                raise ValueError(f"{label(spec.name)} must be a whole number, got {value}")
            return int(float(value))
        return float(value)
    if spec.kind == "bool":
        return bool(value)
    return str(value if value is not None else "").strip()


def config_from_values(method: str, values: dict[str, object]) -> RunConfig:
    """`values` maps "section.field" to form values; only the chosen method's section is read."""
    if method not in METHODS:
        raise ValueError(f"choose a method: {', '.join(METHODS.values())}")
    data: dict = {"version": CONFIG_VERSION, "method": method, "training": {}, method: {}}
    for section in ("training", method):
        for spec in field_specs(section):
            if spec.key in values:
                data[section][spec.name] = from_form_value(spec, values[spec.key])
    return config_from_dict(data)


def values_from_config(config: RunConfig) -> dict[str, object]:
    data = config.to_dict()
    return {
        spec.key: to_form_value(spec, data[section][spec.name])
        for section in ("training", config.method)
        for spec in field_specs(section)
    }


def _component(spec: FieldSpec, value) -> gr.components.Component:
    """A component for one field, holding `value` (already a form value)."""
    common = {"label": label(spec.name), "info": spec.help, "elem_id": f"cfg-{spec.section}-{spec.name}"}
    if spec.kind == "bool":
        return gr.Checkbox(value=value, **common)
    if spec.choices:
        return gr.Dropdown(choices=list(spec.choices), value=value, **common)
    if spec.kind == "int":
        return gr.Number(value=value, precision=0, **common)
    if spec.kind == "float":
        return gr.Number(value=value, **common)
    if spec.kind == "list":
        return gr.Textbox(value=value, lines=2, **common | {"info": spec.help + " One per line."})
    return gr.Textbox(value=value, **common)


class ConfigForm:
    """Components for the shared section and every method's section; only the chosen method's are visible."""

    def __init__(self) -> None:
        self.fields: dict[str, gr.components.Component] = {}
        self.specs: dict[str, FieldSpec] = {}
        self.method_groups: dict[str, list[gr.Group]] = {}

    def _default(self, spec: FieldSpec):
        cls = section_class(spec.section)
        f = next(f for f in dataclasses.fields(cls) if f.name == spec.name)
        return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default

    def _render(self, section: str, important: bool, defaults: RunConfig) -> None:
        present = values_from_config(defaults) if section in ("training", defaults.method) else {}
        specs = [spec for spec in field_specs(section) if (spec.name in IMPORTANT[section]) == important]
        # two fields a row (a list gets a row of its own), so the form stays short at laptop width
        rows: list[list[FieldSpec]] = []
        for spec in specs:
            if spec.kind == "list" or not rows or len(rows[-1]) == 2 or rows[-1][0].kind == "list":
                rows.append([spec])
            else:
                rows[-1].append(spec)
        for row in rows:
            with gr.Row(equal_height=True):
                for spec in row:
                    value = present.get(spec.key, to_form_value(spec, self._default(spec)))
                    self.fields[spec.key] = _component(spec, value)
                    self.specs[spec.key] = spec

    def render_important(self, defaults: RunConfig) -> None:
        self._render("training", True, defaults)
        for method in METHODS:
            with gr.Group(visible=method == defaults.method) as group:
                gr.Markdown(f"**{METHODS[method]}**", padding=True)
                self._render(method, True, defaults)
            self.method_groups.setdefault(method, []).append(group)

    def render_advanced(self, defaults: RunConfig) -> None:
        self._render("training", False, defaults)
        for method in METHODS:
            with gr.Group(visible=method == defaults.method) as group:
                self._render(method, False, defaults)
            self.method_groups.setdefault(method, []).append(group)

    @property
    def components(self) -> set:
        return set(self.fields.values())

    def read(self, values: dict) -> dict[str, object]:
        """Component values (as Gradio passes a set of inputs) -> "section.field" values."""
        return {key: values[component] for key, component in self.fields.items() if component in values}

    def updates(self, config: RunConfig) -> dict:
        """Outputs that fill the form with `config` and show its method's fields."""
        values = values_from_config(config)
        out = {self.fields[key]: value for key, value in values.items() if key in self.fields}
        for method, groups in self.method_groups.items():
            for group in groups:
                out[group] = gr.Group(visible=method == config.method)
        return out

    @property
    def outputs(self) -> list:
        return list(self.fields.values()) + [g for groups in self.method_groups.values() for g in groups]
