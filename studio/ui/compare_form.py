"""The Compare tab's grid builder as named fields: the base settings (prompt, seed, steps... and the adapters the
Playground sent), three axes, and which LoRA of the stack the weight and checkpoint axes act on.

What the fields mean is here, apart from the layout: `base_settings` and `axis` turn the form into the arguments of
`studio.generate.grid.render_grid` (the same function as `studio compare`), and `ComparisonForm.read` / `.updates`
turn it into a JSON-able dict and back (what a page reload restores).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import gradio as gr

from studio.generate import library
from studio.generate.engine import GenerationSettings
from studio.generate.grid import NO_LORA, Axis, checkpoint_axis, stack_axis
from studio.paths import data_dir
from studio.ui.remembered import Memory

# everything the Playground sends besides the fields shown here: the adapters and how they are applied
EXTRAS = ("loras", "embeddings", "svdiffs", "fuse", "fast", "quantize")
FIELDS = ("prompt", "negative_prompt", "sampler", "steps", "guidance", "seed", "model")
DEFAULT_BASE = {
    "prompt": "a red circle on a black background",
    "negative_prompt": "",
    "sampler": "default",
    "steps": 20,
    "guidance": GenerationSettings(prompt="-").guidance,
    "seed": 0,
    "model": "pocket",
}
DEFAULT_AXES = {
    "x": {"kind": "guidance", "values": "2, 5, 8", "run": None},
    "y": {"kind": "sampler", "values": "dpmpp_2m, euler_a", "run": None},
    "z": {"kind": "", "values": "", "run": None},
}
VALUES_HINT = "Comma-separated values; prompts separated by |."
CHECKPOINT_HINT = "Every checkpoint it saved. Or type LoRA files of the data folder, comma-separated (none = without)."
# what a values box shows when its axis is switched to a kind: an example to edit, not the last kind's values
EXAMPLE_VALUES = {
    "lora_weight": "0, 0.5, 1",
    "prompt": "a red circle on a black background | a blue square on a white background",
    "sampler": "dpmpp_2m, euler_a",
    "guidance": "2, 5, 8",
    "steps": "10, 20, 30",
    "seed": "0, 1, 2",
    "stack": "all, 1, 2, none",
    "stacking": "scoped, composite, sum",
}


def run_choices() -> list[tuple[str, str]]:
    return [(c.label, c.path) for c in library.list_checkpoint_runs()]


def lora_add_choices() -> list[tuple[str, str]]:
    return [(c.label, c.path) for c in library.list_loras()]


def describe_extras(extras: dict | None) -> str:
    """The adapters of the base settings in words (names, not server paths)."""
    extras = extras or {}
    loras = extras.get("loras") or []
    lines = [
        f"{i + 1}. **{library.adapter_label(lora['path'])}** at weight {lora.get('weight', 1.0):g}"
        + (" (off)" if not lora.get("enabled", True) else "")
        + (" · per-block " + ", ".join(f"{k} {v:g}" for k, v in lora["blocks"].items()) if lora.get("blocks") else "")
        for i, lora in enumerate(loras)
    ]
    text = "**LoRAs:** " + ("none" if not lines else "") + ("\n" + "\n".join(lines) if lines else "")
    others = [f"embedding {library.adapter_label(e['path'])}" for e in extras.get("embeddings") or []]
    others += [
        f"SVDiff {library.adapter_label(s['path'])} at {s.get('weight', 1.0):g}" for s in extras.get("svdiffs") or []
    ]
    others += ["fast (LCM)"] * bool(extras.get("fast")) + ["fused"] * bool(extras.get("fuse"))
    others += ["int8 weights"] * (extras.get("quantize") == "int8")
    return text + (f"\n\nAlso: {', '.join(others)}." if others else "")


def target_choices(extras: dict | None) -> list[tuple[str, int]]:
    """Which LoRA a weight or checkpoint axis acts on: each of the stack, or (checkpoints) one added to it."""
    loras = (extras or {}).get("loras") or []
    choices = [(f"LoRA {i + 1}: {library.adapter_label(lora['path'])}", i) for i, lora in enumerate(loras)]
    return choices + [("a LoRA added to the stack (checkpoint axis only)", len(loras))]


def base_settings(fields: dict, extras: dict | None) -> GenerationSettings:
    """The settings every cell shares; adapters must lie inside the data folder (ValueError)."""
    extras = {key: value for key, value in (extras or {}).items() if key in EXTRAS}
    for item in [*extras.get("loras", []), *extras.get("embeddings", []), *extras.get("svdiffs", [])]:
        library.inside_data(item.get("path", ""))
    values = {name: fields[name] for name in FIELDS} | extras
    values["model"] = (values["model"] or "").strip() or "pocket"
    values["steps"], values["seed"], values["guidance"] = (
        int(values["steps"]),
        int(values["seed"]),
        float(values["guidance"]),
    )
    return GenerationSettings.from_dict(values)


def _data_file(text: str) -> str:
    """A LoRA named by a path inside the data folder, absolute or relative to it."""
    return str(library.inside_data(data_dir() / text.strip()))


def axis(kind: str, values: str, run: str | None, target: int, extras: dict | None) -> Axis | None:
    """One axis of the form. A checkpoint axis takes `run` (picked, or typed as a run id or runs/<id>): every
    checkpoint the run saved; or LoRA files typed there instead. A weight axis is labelled with its LoRA's name."""
    if not kind:
        return None
    loras = (extras or {}).get("loras") or []
    if kind == "checkpoint":
        parts = [v.strip() for v in (run or "").split(",") if v.strip()]
        if not parts:
            raise ValueError("the checkpoint axis needs a run: pick one")
        if len(parts) == 1 and parts[0] != NO_LORA and not parts[0].endswith(".safetensors"):
            found = checkpoint_axis(library.find_run(parts[0]))
        else:
            found = Axis("checkpoint", tuple(NO_LORA if p == NO_LORA else _data_file(p) for p in parts))
        return replace(found, target=int(target or 0))
    if kind == "stack":
        return stacked_vs_alone(loras, values)
    found = Axis.parse(f"{kind}={values}")
    if kind == "lora_weight":
        target = int(target or 0)
        if target >= len(loras):
            raise ValueError(
                "the weight axis scales a LoRA of the base settings: add one (or use the Playground's Send to compare)"
            )
        name = library.adapter_label(loras[target]["path"])
        found = replace(found, target=target, labels=tuple(f"{name} weight {v:g}" for v in found.values))
    return found


@dataclass
class AxisRow:
    kind: gr.Dropdown
    values: gr.Textbox
    run: gr.Dropdown


@dataclass
class ComparisonForm:
    fields: dict  # setting name (FIELDS) -> component
    extras: gr.State  # the adapters (EXTRAS) of the base settings, as the Playground sent them
    axes: dict  # "x" | "y" | "z" -> AxisRow
    target: gr.Dropdown
    run: gr.Dropdown  # "Which checkpoint is best?"

    @property
    def components(self) -> list:
        rows = [c for row in self.axes.values() for c in (row.kind, row.values, row.run)]
        return [*self.fields.values(), self.extras, *rows, self.target, self.run]

    def read(self, values: dict) -> dict:
        """The form as a JSON-able dict (run ids and data-folder paths, nothing else of the server's)."""
        axes = {
            name: {"kind": values[row.kind] or "", "values": values[row.values] or "", "run": values[row.run]}
            for name, row in self.axes.items()
        }
        fields = {name: values[component] for name, component in self.fields.items()}
        return fields | {"extras": values[self.extras] or {}, "axes": axes, "target": values[self.target],
                         "run": values[self.run]}  # fmt: skip

    def updates(self, saved: dict) -> dict:
        """`saved` (what `read` made) back into the form."""
        runs = run_choices()
        extras = {key: value for key, value in (saved.get("extras") or {}).items() if key in EXTRAS}
        out: dict = {component: saved.get(name, DEFAULT_BASE[name]) for name, component in self.fields.items()}
        out[self.extras] = extras
        for name, row in self.axes.items():
            shown = (saved.get("axes") or {}).get(name) or DEFAULT_AXES[name]
            out |= self.axis_updates(row, shown.get("kind") or "", runs, shown.get("run"), shown.get("values") or "")
        choices = target_choices(extras)
        target = saved.get("target")
        out[self.target] = gr.Dropdown(choices=choices, value=target if target in {v for _, v in choices} else 0)
        out[self.run] = gr.Dropdown(choices=runs, value=saved.get("run"))  # typed or gone: said so when used
        return out

    @staticmethod
    def axis_updates(row: AxisRow, kind: str, runs: list, run: str | None, values: str | None = None) -> dict:
        """A checkpoint axis shows a run to pick (or LoRA files to type); the others a box of values. `values`
        None: the kind was just chosen, so its box shows an example."""
        checkpoint = kind == "checkpoint"
        shown = EXAMPLE_VALUES.get(kind, "") if values is None else values
        return {
            row.kind: kind,
            row.run: gr.Dropdown(choices=runs, value=run, visible=checkpoint),
            row.values: gr.Textbox(value=shown, visible=not checkpoint),
        }

    def refreshed_lists(self, values: dict) -> dict:
        """The runs read again from disk (a run finished or saved its first checkpoint). The values are left alone
        (not sent back): one may be typed (runs/<id>, LoRA files), and a restore may be setting them meanwhile."""
        runs = run_choices()
        return {component: gr.Dropdown(choices=runs) for component in self.list_components}

    @property
    def list_components(self) -> list:
        return [self.run, *(row.run for row in self.axes.values())]

    def memory(self) -> Memory:
        """The grid builder's fields, axes and the run picked: what a page reload gives back."""
        return Memory("compare", self.components, self.read, self.updates, self.components)


def stacked_vs_alone(loras: list[dict], values: str = "") -> Axis:
    """The stack as set, each LoRA alone and none, labelled with the LoRAs' names; `values` ("all, 2, none")
    picks some of them, LoRAs numbered from 1 as in the list above."""
    if not loras:
        raise ValueError("stacked vs each alone needs LoRAs in the base settings: add two (or Send to compare)")
    names = [library.adapter_label(lora["path"]) for lora in loras]
    every = stack_axis(loras, names)
    if not values.strip():
        return every
    wanted = Axis.parse(f"stack={values}").values
    unknown = [v + 1 for v in wanted if isinstance(v, int) and v not in every.values]
    if unknown:
        raise ValueError(
            f"the stack axis names LoRA {unknown[0]}, but the base settings hold {len(loras)} (switched on)"
        )
    return Axis("stack", wanted, tuple(every.labels[every.values.index(v)] for v in wanted))
