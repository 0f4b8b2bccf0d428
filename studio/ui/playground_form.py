"""The Playground's form as one named structure: its components by name, read into a `GenerationSettings`-shaped
dict and written back from one.

Generate, "Send to compare", a dropped PNG (whose text chunks hold exactly such a dict) and a page reload (the dict
kept in the browser) all go through `PlaygroundForm.settings` and `PlaygroundForm.updates`, so a field added here is
restored everywhere, and no handler matches a long list of values against a list of outputs by position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from studio.generate import library
from studio.generate.engine import GenerationSettings
from studio.ui.remembered import Memory

SLOTS = 4  # LoRAs stacked at once in the UI (the engine takes any number)
WEIGHT_RANGE = (-2.0, 2.0)
DEFAULTS = GenerationSettings(prompt="-")
# what the form shows for a setting a dict leaves out (an older PNG, an empty browser memory)
FALLBACK = {
    "prompt": "",
    "negative_prompt": "",
    "sampler": "default",
    "steps": DEFAULTS.steps,
    "guidance": DEFAULTS.guidance,
    "seed": 0,
    "model": "pocket",
    "fuse": False,
    "stacking": "scoped",
    "fast": False,
    "quantize": "none",
}


def lora_choices() -> list[tuple[str, str]]:
    return [("(none)", "")] + [(c.label, c.path) for c in library.list_loras()]


def svdiff_choices() -> list[tuple[str, str]]:
    return [("(none)", "")] + [(c.label, c.path) for c in library.list_svdiffs()]


def embedding_choices() -> list[tuple[str, str]]:
    return [(c.label, c.path) for c in library.list_embeddings()]


def with_choices(choices: list[tuple[str, str]], paths: list[str]) -> list[tuple[str, str]]:
    """`choices`, plus each of `paths` the list does not (yet) show, e.g. a checkpoint named by a restored PNG."""
    known = {p for _, p in choices}
    return choices + [(library.adapter_label(p), p) for p in dict.fromkeys(paths) if p and p not in known]


@dataclass
class Slot:
    lora: gr.Dropdown
    weight: gr.Slider
    enabled: gr.Checkbox
    blocks: dict = field(default_factory=dict)  # "down" | "mid" | "up" -> multiplier slider (experts)


def block_weights(values: dict, slot: Slot) -> dict | None:
    """The slot's per-block multipliers, or None when all are 1 (the plain weight applies everywhere)."""
    blocks = {name: float(values[slider]) for name, slider in slot.blocks.items()}
    return blocks if any(value != 1.0 for value in blocks.values()) else None


@dataclass
class PlaygroundForm:
    prompt: gr.Textbox
    negative: gr.Textbox
    sampler: gr.Dropdown
    steps: gr.Slider
    guidance: gr.Slider
    count: gr.Slider
    seed: gr.Number
    model: gr.Textbox
    fast: gr.Checkbox
    quantize: gr.Radio
    fuse: gr.Checkbox
    stacking: gr.Radio
    embeddings: gr.Dropdown
    svdiff: gr.Dropdown
    svdiff_weight: gr.Slider
    slots: list[Slot]

    @property
    def scalars(self) -> dict:
        """Setting name -> the component that shows it, for the settings that are one value each."""
        return {
            "prompt": self.prompt,
            "negative_prompt": self.negative,
            "sampler": self.sampler,
            "steps": self.steps,
            "guidance": self.guidance,
            "count": self.count,
            "seed": self.seed,
            "model": self.model,
            "fuse": self.fuse,
            "stacking": self.stacking,
            "fast": self.fast,
            "quantize": self.quantize,
        }

    @property
    def components(self) -> list:
        """Every component the settings are read from (and written to), in a fixed order."""
        slots = [c for s in self.slots for c in (s.lora, s.weight, s.enabled, *s.blocks.values())]
        return [*self.scalars.values(), self.embeddings, self.svdiff, self.svdiff_weight, *slots]

    def settings(self, values: dict) -> dict:
        """The form as GenerationSettings fields; adapter paths must lie inside the data folder (ValueError)."""
        loras = [
            {
                "path": str(library.inside_data(values[s.lora])),
                "weight": float(values[s.weight]),
                "enabled": bool(values[s.enabled]),
            }
            | ({"blocks": block_weights(values, s)} if block_weights(values, s) else {})
            for s in self.slots
            if values[s.lora]
        ]
        svdiffs = (
            [{"path": str(library.inside_data(values[self.svdiff])), "weight": float(values[self.svdiff_weight])}]
            if values[self.svdiff]
            else []
        )
        return {
            "prompt": values[self.prompt],
            "negative_prompt": values[self.negative],
            "sampler": values[self.sampler],
            "steps": int(values[self.steps]),
            "guidance": float(values[self.guidance]),
            "count": int(values[self.count]),
            "seed": int(values[self.seed]),
            "model": (values[self.model] or "").strip() or "pocket",
            "loras": loras,
            "embeddings": [{"path": str(library.inside_data(p))} for p in values[self.embeddings] or []],
            "svdiffs": svdiffs,
            "fuse": bool(values[self.fuse]),
            "stacking": values[self.stacking],
            "fast": bool(values[self.fast]),
            "quantize": values[self.quantize],
        }

    def updates(self, settings: dict) -> tuple[dict, list[str]]:
        """`settings` (a dict as `settings` makes; a PNG's or the browser's) as updates of every component, and
        the adapter paths left out: outside the data folder, or gone. Settings it lacks take the form's defaults,
        but a dict without `count` leaves the image count as it is (a PNG holds one image's settings)."""
        skipped: list[str] = []

        def usable(items: list[dict], limit: int | None = None) -> list[dict]:
            kept = []
            for item in items[:limit]:
                try:
                    path = library.inside_data(item.get("path", ""))
                except ValueError:
                    skipped.append(str(item.get("path")))
                    continue
                if path.exists():
                    kept.append(item | {"path": str(path)})
                else:
                    skipped.append(f"{item.get('path')} (gone)")
            return kept

        loras = usable(settings.get("loras") or [], SLOTS)
        embeds = [item["path"] for item in usable(settings.get("embeddings") or [])]
        shifts = usable(settings.get("svdiffs") or [], 1)
        shift = shifts[0] if shifts else {"path": "", "weight": 1.0}

        out: dict = {
            component: settings.get(name, FALLBACK.get(name))
            for name, component in self.scalars.items()
            if name in settings or name in FALLBACK
        }
        choices = with_choices(lora_choices(), [lora["path"] for lora in loras])
        for index, slot in enumerate(self.slots):
            lora = loras[index] if index < len(loras) else {"path": "", "weight": 1.0, "enabled": True}
            out[slot.lora] = gr.Dropdown(choices=choices, value=lora["path"])
            out[slot.weight] = float(lora.get("weight", 1.0))
            out[slot.enabled] = bool(lora.get("enabled", True))
            blocks = lora.get("blocks") or {}
            out |= {slider: float(blocks.get(name, 1.0)) for name, slider in slot.blocks.items()}
        out[self.embeddings] = gr.Dropdown(choices=with_choices(embedding_choices(), embeds), value=embeds)
        out[self.svdiff] = gr.Dropdown(choices=with_choices(svdiff_choices(), [shift["path"]]), value=shift["path"])
        out[self.svdiff_weight] = float(shift.get("weight", 1.0))
        return out, skipped

    def refreshed_lists(self, values: dict) -> dict:
        """The adapter lists read again from disk (a run finished, a file was added). A choice that is gone is
        emptied; any other value is left alone (not sent back), so a restore running meanwhile is not undone."""
        loras, shifts, embeds = lora_choices(), svdiff_choices(), embedding_choices()

        def listed(component, choices: list, empty):
            gone = values[component] and values[component] not in {p for _, p in choices}
            return gr.Dropdown(choices=choices, value=empty) if gone else gr.Dropdown(choices=choices)

        out = {slot.lora: listed(slot.lora, loras, "") for slot in self.slots}
        out[self.svdiff] = listed(self.svdiff, shifts, "")
        known = {p for _, p in embeds}
        chosen = values[self.embeddings] or []
        kept = [p for p in chosen if p in known]
        out[self.embeddings] = (
            gr.Dropdown(choices=embeds, value=kept) if kept != chosen else gr.Dropdown(choices=embeds)
        )
        return out

    @property
    def list_components(self) -> list:
        return [*(s.lora for s in self.slots), self.svdiff, self.embeddings]

    def memory(self) -> Memory:
        """The prompt, settings and adapter stack: what a page reload gives back (as a dropped PNG does)."""
        return Memory("playground", self.components, self.settings, lambda saved: self.updates(saved)[0],
                      self.components)  # fmt: skip
