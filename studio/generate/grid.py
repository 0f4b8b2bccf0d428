"""Fixed-seed comparison grids (like the AUTOMATIC1111 web UI's XYZ plot), saved as one PNG with labelled axes.

Each axis varies one thing: the checkpoints of a run (or LoRA files), a LoRA's weight, the prompt, the sampler,
guidance, steps or seed. Every cell uses the same seed and otherwise the same settings, so the difference between
two cells is the axis value alone. Cells are drawn in an order that switches LoRAs as rarely as possible.
"""

from __future__ import annotations

import itertools
import random
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from studio.generate.engine import GenerationEngine, GenerationSettings
from studio.generate.library import adapter_label
from studio.generate.png_metadata import save_png
from studio.generate.samplers import SAMPLERS
from studio.generate.scoping import STACKING_MODES
from studio.runs import read_config, resolve_run
from studio.runs.checkpoints import list_checkpoints

AXIS_KINDS = {
    "checkpoint": "Checkpoints of a run, or LoRA files (replace the chosen LoRA, keeping its weight; none = without it)",
    "lora_weight": "Weight of the chosen LoRA (the first unless told)",
    "prompt": "Prompt",
    "sampler": "Sampler",
    "guidance": "Guidance",
    "steps": "Steps",
    "seed": "Seed",
    "stack": "The LoRA stack as set, each LoRA alone, and none (all, 1, 2, ..., none): stacked vs each alone",
    "stacking": "How LoRAs on at once combine: " + ", ".join(STACKING_MODES),
}
MAX_CELLS = 64
MIN_CELL = 128  # small models make small images: enlarge them (nearest neighbour) so a grid is readable
# switching LoRAs costs a file read, switching anything else costs nothing: slowest axis outermost
SWITCH_COST = {"checkpoint": 2, "lora_weight": 1}
NO_LORA = "none"  # a checkpoint axis value: the cell drawn without the first LoRA, i.e. what training started from


@dataclass(frozen=True)
class Axis:
    kind: str
    values: tuple
    labels: tuple = field(default=())
    # which LoRA of the stack a checkpoint or lora_weight axis acts on (0: the first); past the end: a new one
    target: int = 0

    def __post_init__(self) -> None:
        if self.kind not in AXIS_KINDS:
            raise ValueError(f"unknown axis {self.kind!r}; choose one of: {', '.join(AXIS_KINDS)}")
        if not self.values:
            raise ValueError(f"the {self.kind} axis has no values")
        if self.labels and len(self.labels) != len(self.values):
            raise ValueError(f"the {self.kind} axis has {len(self.values)} values but {len(self.labels)} labels")
        if self.kind == "sampler":
            unknown = [v for v in self.values if v not in SAMPLERS]
            if unknown:
                raise ValueError(f"unknown sampler(s) {unknown}; choose from: {', '.join(SAMPLERS)}")
        if self.kind == "stacking":
            unknown = [v for v in self.values if v not in STACKING_MODES]
            if unknown:
                raise ValueError(f"unknown stacking mode(s) {unknown}; choose from: {', '.join(STACKING_MODES)}")
        if self.kind == "stack":
            bad = [v for v in self.values if v not in ("all", NO_LORA) and not (isinstance(v, int) and v >= 0)]
            if bad:
                raise ValueError(f"a stack axis takes all, none and LoRA numbers (1, 2, ...), got {bad}")

    @classmethod
    def parse(cls, text: str) -> Axis:
        """`KIND=V1,V2,...` (prompts are separated by `|`, since prompts hold commas); `checkpoint=RUN` takes every
        saved step of a run."""
        kind, sep, raw = text.partition("=")
        kind = kind.strip()
        if not sep or not raw.strip():
            raise ValueError(f"an axis is KIND=VALUES, e.g. lora_weight=0,0.5,1; got {text!r}")
        parts = [v.strip() for v in raw.split("|" if kind == "prompt" else ",") if v.strip()]
        if kind == "checkpoint" and len(parts) == 1 and not Path(parts[0]).is_file():
            return checkpoint_axis(parts[0])
        if kind in ("lora_weight", "guidance"):
            return cls(kind, tuple(_number(kind, v, float) for v in parts))
        if kind in ("steps", "seed"):
            return cls(kind, tuple(_number(kind, v, int) for v in parts))
        if kind == "stack":  # LoRAs are numbered from 1 as the Playground's slots are
            return cls(kind, tuple(v if v in ("all", NO_LORA) else _number(kind, v, int) - 1 for v in parts))
        return cls(kind, tuple(parts))

    def label(self, index: int) -> str:
        if self.labels:
            return self.labels[index]
        value = self.values[index]
        if self.kind == "sampler":
            return SAMPLERS[value][2]
        if self.kind == "checkpoint":
            return "base model" if value == NO_LORA else _checkpoint_label(Path(value))
        if self.kind == "stack":
            return {"all": "stacked", NO_LORA: "no LoRA"}.get(value, f"LoRA {value + 1} alone")
        return f"{self.kind.replace('_', ' ')} {value}" if self.kind != "prompt" else str(value)

    def apply(self, values: dict, index: int) -> dict:
        """The generation settings (as a dict) with this axis at value `index`."""
        value = self.values[index]
        out = dict(values)
        loras = [dict(lora) for lora in out.get("loras", [])]
        at = min(self.target, len(loras))  # past the end: the checkpoint is added to the stack
        if self.kind == "checkpoint" and value == NO_LORA:
            out["loras"] = loras[:at] + loras[at + 1 :]
        elif self.kind == "checkpoint":
            chosen = loras[at] if at < len(loras) else {"weight": 1.0}
            out["loras"] = loras[:at] + [chosen | {"path": str(value), "enabled": True}] + loras[at + 1 :]
        elif self.kind == "stack":
            if isinstance(value, int) and value >= len(loras):
                raise ValueError(f"the stack axis asks for LoRA {value + 1}, but the stack has {len(loras)}")
            if value != "all":
                out["loras"] = [lora | {"enabled": value == i and lora.get("enabled", True)}
                                for i, lora in enumerate(loras)]  # fmt: skip
        elif self.kind == "lora_weight":
            if at >= len(loras):
                raise ValueError("a lora_weight axis needs a LoRA (add one, or a checkpoint axis)")
            out["loras"] = loras[:at] + [loras[at] | {"weight": float(value)}] + loras[at + 1 :]
        else:
            out[self.kind] = value
        return out


def _checkpoint_label(path: Path) -> str:
    """ "step 200" for a run's checkpoint folder; a run's exported LoRA by the run's name and trigger; another
    file by its name (a full path would fill the cell)."""
    step = path.name.removeprefix("step-")
    return f"step {int(step)}" if path.name.startswith("step-") and step.isdigit() else adapter_label(path)


def _number(kind: str, text: str, kind_type: type):
    try:
        return kind_type(text)
    except ValueError:
        raise ValueError(f"the {kind} axis takes numbers, got {text!r}") from None


def checkpoint_axis(run: str | Path, with_base: bool = False) -> Axis:
    """Every saved checkpoint of a run, oldest first, labelled by step; `with_base` puts the base model first."""
    run_dir = resolve_run(run)
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        raise ValueError(f"run {run_dir.name} has no saved checkpoints yet")
    labels = tuple(_checkpoint_label(p) for p in checkpoints)
    values = tuple(str(p) for p in checkpoints)
    if with_base:
        labels, values = ("base model", *labels), (NO_LORA, *values)
    return Axis("checkpoint", values, labels)


def stack_axis(loras: list[dict], names: list[str] | None = None) -> Axis:
    """ "Stacked vs each alone": the stack as set, then each enabled LoRA alone, then the base model."""
    enabled = [i for i, lora in enumerate(loras) if lora.get("enabled", True)]
    if not enabled:
        raise ValueError("stacked vs each alone needs at least one LoRA switched on")
    names = names or [Path(str(lora["path"])).name for lora in loras]
    labels = ("stacked", *(f"{names[i]} alone" for i in enabled), "no LoRA")
    return Axis("stack", ("all", *enabled, NO_LORA), labels)


def best_checkpoint_axes(run: str | Path) -> tuple[Axis, Axis, dict]:
    """ "Which checkpoint is best?": the base model and then every checkpoint across, the run's sample prompts down,
    so the first column shows what training started from."""
    run_dir = resolve_run(run)
    training = read_config(run_dir)["training"]
    prompts = tuple(training.get("sample_prompts") or ()) or ("a photo",)
    base = {
        "model": training["base_model"],
        "steps": training["sample_steps"],
        "seed": training["sample_seed"],
        "width": training["resolution"],
        "height": training["resolution"],
    }
    return checkpoint_axis(run_dir, with_base=True), Axis("prompt", prompts), base


@dataclass
class Grid:
    image: Image.Image
    cells: list[dict]  # the parameters of every cell, in drawing order
    images: list[Image.Image]  # the cells' images, same order
    labels: list[str]  # each cell's axis values, e.g. "step 200 · guidance 6.0"
    params: dict  # what the grid PNG stores


def render_grid(
    engine: GenerationEngine,
    base: GenerationSettings,
    x: Axis,
    y: Axis | None = None,
    z: Axis | None = None,
    on_cell: Callable[[int, int], None] | None = None,
) -> Grid:
    """Draw every combination of the axes' values with `base`'s settings and one seed; z makes stacked panels."""
    if z is not None and y is None:
        raise ValueError("a z axis needs a y axis")
    axes = [a for a in (x, y, z) if a is not None]
    if len({a.kind for a in axes}) != len(axes):
        raise ValueError("each axis must vary something different")
    shape = [len(a.values) for a in axes]
    total = 1
    for n in shape:
        total *= n
    if total > MAX_CELLS:
        raise ValueError(f"the grid has {total} cells; at most {MAX_CELLS}")
    values = {f.name: getattr(base, f.name) for f in fields(base)} | {"count": 1}
    if values["seed"] < 0:
        values["seed"] = random.randrange(2**31)  # one seed for every cell: that is the point of the grid

    # the axis that is slowest to switch varies slowest
    order = sorted(range(len(axes)), key=lambda i: -SWITCH_COST.get(axes[i].kind, 0))
    indices = sorted(itertools.product(*(range(n) for n in shape)), key=lambda idx: [idx[i] for i in order])
    images: dict[tuple, Image.Image] = {}
    cells = []
    for done, index in enumerate(indices, 1):
        cell = values
        for axis, i in zip(axes, index):
            cell = axis.apply(cell, i)
        result = engine.generate(GenerationSettings.from_dict(cell))[0]
        images[index] = result.image
        cells.append(result.params)
        if on_cell:
            on_cell(done, total)

    panels = []
    for k in range(len(z.values) if z else 1):
        panel = {
            (i, j): images[(i, j, k)[: len(axes)]] for i in range(shape[0]) for j in range(len(y.values) if y else 1)
        }
        panels.append(_draw_panel(panel, x, y, title=z.label(k) if z else None))
    image = _stack_vertically(panels)
    params = {
        "grid": {"x": _axis_dict(x), "y": _axis_dict(y), "z": _axis_dict(z)},
        "base": {k: v for k, v in values.items() if k not in ("count",)},
    }
    labels = [" · ".join(axis.label(i) for axis, i in zip(axes, index)) for index in indices]
    return Grid(image, cells, [images[index] for index in indices], labels, params)


def _axis_dict(axis: Axis | None) -> dict | None:
    if axis is None:
        return None
    out = {"kind": axis.kind, "values": list(axis.values), "labels": [axis.label(i) for i in range(len(axis.values))]}
    return out | ({"target": axis.target} if axis.kind in ("checkpoint", "lora_weight") else {})


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _draw_panel(images: dict, x: Axis, y: Axis | None, title: str | None) -> Image.Image:
    columns, rows = len(x.values), len(y.values) if y else 1
    first = next(iter(images.values()))
    scale = max(1, -(-MIN_CELL // max(first.size)))
    cell_w, cell_h = first.width * scale, first.height * scale
    font = _font(14)
    gap = 4
    chars_per_line = max(8, cell_w // 8)
    column_labels = [textwrap.wrap(x.label(i), chars_per_line)[:3] for i in range(columns)]
    row_labels = [textwrap.wrap(y.label(j), 18)[:6] if y else [] for j in range(rows)]
    line = 18
    header = line * max(len(lines) for lines in column_labels) + 8
    widest = max((font.getlength(text) for lines in row_labels for text in lines), default=0)
    left = int(widest) + 12 if y else 0
    top = (line + 8) if title else 0
    width = left + columns * (cell_w + gap) + gap
    height = top + header + rows * (cell_h + gap) + gap
    panel = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(panel)
    if title:
        draw.text((gap + 2, 4), title, fill="black", font=_font(16))
    for i, lines in enumerate(column_labels):
        x0 = left + gap + i * (cell_w + gap)
        for n, text in enumerate(lines):
            draw.text((x0 + cell_w / 2, top + 4 + n * line), text, fill="black", font=font, anchor="ma")
    for j, lines in enumerate(row_labels):
        y0 = top + header + gap + j * (cell_h + gap)
        for n, text in enumerate(lines):
            draw.text((4, y0 + 4 + n * line), text, fill="black", font=font)
    for (i, j), image in images.items():
        cell = image.convert("RGB").resize((cell_w, cell_h), Image.Resampling.NEAREST)
        panel.paste(cell, (left + gap + i * (cell_w + gap), top + header + gap + j * (cell_h + gap)))
    return panel


def _stack_vertically(panels: list[Image.Image]) -> Image.Image:
    if len(panels) == 1:
        return panels[0]
    width = max(p.width for p in panels)
    out = Image.new("RGB", (width, sum(p.height for p in panels)), "white")
    offset = 0
    for panel in panels:
        out.paste(panel, (0, offset))
        offset += panel.height
    return out


def save_grid(grid: Grid, path: str | Path) -> Path:
    """One PNG with the grid and, in its text chunks, the axes and the shared settings."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_png(grid.image, path, grid.params | {"prompt": grid.params["base"].get("prompt", "")})


def save_cells(grid: Grid, folder: str | Path) -> list[Path]:
    """Each cell as its own PNG carrying its exact settings (drop one into the playground to continue from it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        save_png(image, folder / f"cell-{i:02d}.png", params)
        for i, (image, params) in enumerate(zip(grid.images, grid.cells))
    ]
