"""The pocket captioner: a tiny CNN that captions shapes-world images in the world's own words.

It reads a 64 x 64 image and answers three questions with three heads (which shape, which
colour, which background), then writes `caption_for(shape, colour, background)`, the sentence
the pocket model was pretrained on. Trained on freshly rendered images only, so it never sees
the same image twice and cannot memorise; ~1-2 minutes on one CPU thread.

The weights (safetensors) and a JSON config with the label lists ship in
`assets/pocket-captioner/`; `train_pocket_captioner` is the recipe that wrote them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from studio.data.captioners.base import Captioner
from studio.data.files import write_bytes_atomic, write_json_atomic, write_text_atomic
from studio.paths import PROJECT_ROOT
from studio.pocket import world

POCKET_CAPTIONER_DIR: Path = PROJECT_ROOT / "assets" / "pocket-captioner"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
INPUT_SIDE = 32  # the world's shapes stay distinct at 32 px, and a 32 px network is 4x cheaper than a 64 px one


@dataclass
class PocketCaptionerConfig:
    """What a saved captioner needs to be rebuilt: its label lists and layer widths."""

    shapes: list[str] = field(default_factory=lambda: list(world.ALL_SHAPES))
    colors: list[str] = field(default_factory=lambda: list(world.BASE_COLORS + world.NEW_COLORS))
    backgrounds: list[str] = field(default_factory=lambda: list(world.BASE_BACKGROUNDS))
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 64])
    hidden: int = 64
    input_side: int = INPUT_SIDE


class PocketCaptionerNet(nn.Module):
    """Conv blocks, global average + max pooling, then one small head per question."""

    def __init__(self, config: PocketCaptionerConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for index, out_channels in enumerate(config.channels):
            # batch norm makes a two-minute training run converge; the last block keeps its 4 x 4 map
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU()]
            if index < len(config.channels) - 1:
                layers.append(nn.MaxPool2d(2))
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        # average pooling sees colours and areas; max pooling sees whether a feature occurs at all,
        # which makes the answer independent of where the shape sits
        self.trunk = nn.Sequential(nn.Linear(2 * in_channels, config.hidden), nn.ReLU())
        self.shape_head = nn.Linear(config.hidden, len(config.shapes))
        self.color_head = nn.Linear(config.hidden, len(config.colors))
        self.background_head = nn.Linear(config.hidden, len(config.backgrounds))

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        maps = self.features(pixels)
        pooled = torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1)
        hidden = self.trunk(pooled)
        return self.shape_head(hidden), self.color_head(hidden), self.background_head(hidden)


def to_tensor(images: Sequence[Image.Image], side: int = INPUT_SIDE) -> torch.Tensor:
    """RGB images of any size -> a (N, 3, side, side) tensor in [-1, 1]."""
    arrays = []
    for image in images:
        rgb = image.convert("RGB")
        if rgb.size != (side, side):
            # BOX averages whole source pixels: a larger render shrinks to what a 64 px render looks like
            rgb = rgb.resize((side, side), Image.Resampling.BOX)
        arrays.append(np.asarray(rgb, dtype=np.float32))
    batch = np.stack(arrays) / 127.5 - 1.0
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


class PocketCaptioner(Captioner):
    """Captions shapes-world images as "a red circle on a black background"."""

    name = "pocket"

    def __init__(self, net: PocketCaptionerNet, config: PocketCaptionerConfig) -> None:
        self.net = net.eval()
        self.config = config

    @classmethod
    def load(cls, folder: str | Path = POCKET_CAPTIONER_DIR) -> PocketCaptioner:
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / WEIGHTS_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
            raise FileNotFoundError(
                f"no pocket captioner in {folder}; train one with `studio dataset train-captioner --out {folder}`"
            )
        config = PocketCaptionerConfig(**json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))["model"])
        net = PocketCaptionerNet(config)
        net.load_state_dict(load_file(folder / WEIGHTS_FILE))
        return cls(net, config)

    def predict(self, images: Sequence[Image.Image]) -> list[tuple[str, str, str]]:
        """(shape, colour, background) for each image."""
        with torch.inference_mode():
            shape_logits, color_logits, background_logits = self.net(to_tensor(images, self.config.input_side))
        return [
            (self.config.shapes[s], self.config.colors[c], self.config.backgrounds[b])
            for s, c, b in zip(
                shape_logits.argmax(1).tolist(), color_logits.argmax(1).tolist(), background_logits.argmax(1).tolist()
            )
        ]

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        return [world.caption_for(*labels) for labels in self.predict(images)]


# ---------------------------------------------------------------- training recipe


@dataclass
class PocketCaptionerTraining:
    """Recipe settings; the defaults reproduce the shipped captioner in ~2 minutes on one CPU thread."""

    steps: int = 900
    batch_size: int = 48
    # scenes rendered once and reused across steps, each with fresh noise: rendering dominated the step time
    pool_size: int = 12_000
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    # scenes for evaluation come from a seed stream the training stream never uses
    eval_seed: int = 10_000
    eval_count: int = 400
    # light corruption so generated (slightly blurry, noisy) images are captioned too
    noise_std: float = 6.0
    blur_probability: float = 0.3


def _render_pool(config: PocketCaptionerConfig, recipe: PocketCaptionerTraining) -> tuple[torch.Tensor, torch.Tensor]:
    """`pool_size` labelled scenes as uint8 pixels at the network's input size."""
    from PIL import ImageFilter

    rng = np.random.default_rng(recipe.seed)
    vocabulary = {
        "shapes": tuple(config.shapes),
        "colors": tuple(config.colors),
        "backgrounds": tuple(config.backgrounds),
    }
    pixels = np.empty((recipe.pool_size, config.input_side, config.input_side, 3), dtype=np.uint8)
    labels = np.empty((recipe.pool_size, 3), dtype=np.int64)
    for index in range(recipe.pool_size):
        scene = world.random_scene(rng, **vocabulary)
        # rendered at several sizes, so the resize to the input size is part of what the model learns to ignore
        image = world.render(scene, int(rng.choice([48, 64, 96])))
        if rng.random() < recipe.blur_probability:
            image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.5))))
        pixels[index] = np.asarray(image.resize((config.input_side,) * 2, Image.Resampling.BOX))
        labels[index] = (
            config.shapes.index(scene.shape),
            config.colors.index(scene.color),
            config.backgrounds.index(scene.background),
        )
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)


def evaluate_pocket_captioner(
    captioner: PocketCaptioner, count: int = 400, seed: int = 10_000, side: int = 64, **vocabulary
) -> dict:
    """Exact-caption rate on `count` fresh scenes (base vocabulary unless `vocabulary` says otherwise)."""
    scenes = list(world.scenes(count, seed, **vocabulary))
    predicted = captioner.caption([world.render(scene, side) for scene in scenes])
    misses = [(scene.caption, got) for scene, got in zip(scenes, predicted) if scene.caption != got]
    return {"count": count, "exact": 1 - len(misses) / count, "misses": misses}


def train_pocket_captioner(
    out_dir: str | Path = POCKET_CAPTIONER_DIR,
    recipe: PocketCaptionerTraining | None = None,
    config: PocketCaptionerConfig | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> dict:
    """Train the pocket captioner from nothing and save it to `out_dir`; returns its evaluation."""
    from safetensors.torch import save

    recipe = recipe or PocketCaptionerTraining()
    config = config or PocketCaptionerConfig()
    torch.manual_seed(recipe.seed)
    net = PocketCaptionerNet(config)
    optimizer = torch.optim.AdamW(net.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    warmup = max(1, recipe.steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        # linear warm-up, then cosine decay to zero: a short run still ends with small, careful steps
        lambda step: (step + 1) / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * step / recipe.steps)),
    )
    loss_fn = nn.CrossEntropyLoss()
    started = time.monotonic()
    pool_pixels, pool_labels = _render_pool(config, recipe)
    generator = torch.Generator().manual_seed(recipe.seed)
    net.train()
    for step in range(recipe.steps):
        picked = torch.randint(0, recipe.pool_size, (recipe.batch_size,), generator=generator)
        pixels = pool_pixels[picked].float() / 127.5 - 1.0
        pixels += torch.randn(pixels.shape, generator=generator) * (recipe.noise_std / 127.5)
        targets = pool_labels[picked]
        shape_logits, color_logits, background_logits = net(pixels)
        # the three questions are equally important: a caption is exact only if all three are right
        loss = (
            loss_fn(shape_logits, targets[:, 0])
            + loss_fn(color_logits, targets[:, 1])
            + loss_fn(background_logits, targets[:, 2])
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if on_step:
            on_step(step + 1, recipe.steps, loss.item())
    net.eval()

    captioner = PocketCaptioner(net, config)
    report = evaluate_pocket_captioner(captioner, recipe.eval_count, recipe.eval_seed)
    full_vocabulary = evaluate_pocket_captioner(
        captioner, recipe.eval_count, recipe.eval_seed + 1, shapes=tuple(config.shapes), colors=tuple(config.colors)
    )
    report["seconds"] = round(time.monotonic() - started, 1)
    out_dir = Path(out_dir)
    write_bytes_atomic(out_dir / WEIGHTS_FILE, save({k: v.contiguous() for k, v in net.state_dict().items()}))
    card = {
        "model": asdict(config),
        "training": asdict(recipe),
        "evaluation": {
            "base_vocabulary_exact": report["exact"],
            "all_shapes_and_colours_exact": full_vocabulary["exact"],
            "count": report["count"],
        },
    }
    write_json_atomic(out_dir / CONFIG_FILE, card)
    write_text_atomic(out_dir / "README.md", _model_card(card, sum(p.numel() for p in net.parameters())))
    return report


def _model_card(card: dict, parameters: int) -> str:
    evaluation, training = card["evaluation"], card["training"]
    shapes = ", ".join(card["model"]["shapes"])
    return f"""# Pocket captioner

A tiny CNN ({parameters:,} parameters) that captions images of the shapes world (`studio.pocket.world`)
in the world's own words: "a red circle on a black background". Three heads answer which shape
({shapes}), which colour and which background. It is the studio's offline default captioner; on other
images it still answers in shapes-world words, so it is only useful with the pocket model.

Recipe: `studio dataset train-captioner` (`train_pocket_captioner` in `studio/data/captioners/pocket.py`),
from nothing, {training["steps"]} steps of {training["batch_size"]} images drawn from {training["pool_size"]:,}
rendered scenes of every shape and colour, with light blur and noise, seed {training["seed"]}; about a minute
on one CPU thread.

| evaluation ({evaluation["count"]} fresh scenes each) | exact captions |
| --- | --- |
| base vocabulary (4 shapes, 6 colours, 4 backgrounds) | {evaluation["base_vocabulary_exact"]:.1%} |
| all shapes and colours | {evaluation["all_shapes_and_colours_exact"]:.1%} |

Files: `model.safetensors` (weights), `config.json` (label lists, layer widths, recipe, evaluation).
"""
