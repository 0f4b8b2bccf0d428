"""Text-to-image generation: settings, a pipeline cache and the generate call.

The UI and `studio generate` both call `GenerationEngine.generate`; neither
holds model state of its own.
"""

from __future__ import annotations

import gc
import math
import random
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from PIL import Image

from studio.adapters.stack import AdapterStack, EmbeddingSpec, LoraSpec, SvdiffSpec
from studio.data.caption_text import MAX_PROMPT_BYTES, check_prompt_size
from studio.generate.composite import composite_unet
from studio.generate.png_metadata import save_png
from studio.generate.quantize import QUANTIZE_MODES
from studio.generate.samplers import SAMPLERS, make_scheduler
from studio.generate.scoping import STACKING_MODES, scope_to_prompt

MAX_COUNT = 16
CHUNK = 4  # images per pipeline call: bounds peak memory on big models
# The text encoder reads a prompt's first 77 tokens (about 300 characters) and drops the rest, so a longer prompt
# only costs memory and time in the tokenizer: a 20 MB prompt held the only generation slot for 3 minutes and took
# the server to 7.8 GB. 4 KB is a page of text, far more than is ever read.
MAX_SEED = 2**32 - 1  # what torch generators and numpy take the same way; 2**70 was an "Overflow" error


@dataclass
class GenerationSettings:
    prompt: str = field(default="", metadata={"help": "What to draw, e.g. 'a yellow triangle on a black background'."})
    negative_prompt: str = field(default="", metadata={"help": "What to steer away from."})
    seed: int = field(default=0, metadata={"help": "Same seed + same settings = same image. -1 picks a random seed."})
    steps: int = field(default=25, metadata={"help": "Denoising steps: more is slower and usually a little cleaner."})
    guidance: float = field(
        default=6.0, metadata={"help": "Classifier-free guidance: how strongly the image follows the prompt."}
    )
    width: int = field(default=0, metadata={"help": "Image width in pixels; 0 uses the model's native size."})
    height: int = field(default=0, metadata={"help": "Image height in pixels; 0 uses the model's native size."})
    count: int = field(default=1, metadata={"help": f"How many images (1-{MAX_COUNT}); image i uses seed + i."})
    sampler: str = field(default="default", metadata={"help": "The sampling algorithm: " + ", ".join(SAMPLERS)})
    model: str = field(
        default="pocket", metadata={"help": "'pocket', a local diffusers folder, a .safetensors file or a hub id."}
    )
    loras: list = field(
        default_factory=list,
        metadata={"help": "LoRAs stacked on the model: dicts with path, weight, enabled and optional blocks."},
    )
    embeddings: list = field(
        default_factory=list, metadata={"help": "Textual-inversion embeddings: dicts with path and optional token."}
    )
    svdiffs: list = field(
        default_factory=list,
        metadata={"help": "SVDiff files (spectral shifts) on the model: dicts with path, weight and enabled."},
    )
    stacking: str = field(
        default="scoped",
        metadata={
            "help": "scoped: a LoRA taught with a trigger word acts only on prompts that say it (several subjects "
            "stack without breaking each other); sum: every LoRA on every prompt."
        },
    )
    fuse: bool = field(
        default=False,
        metadata={"help": "Merge the LoRAs into the model while they stay the same: as fast as the base model."},
    )
    quantize: str = field(
        default="none",
        metadata={"help": "none (float) or int8: linear weights stored as int8 (torchao); less memory, see README."},
    )
    fast: bool = field(
        default=False,
        metadata={"help": "Fast (LCM, 4 steps): adds the pocket model's LCM-LoRA and samples with LCM."},
    )

    def __post_init__(self) -> None:
        check_prompt_size("prompt", self.prompt, MAX_PROMPT_BYTES)
        check_prompt_size("negative_prompt", self.negative_prompt, MAX_PROMPT_BYTES)
        if not self.prompt or not self.prompt.strip():
            raise ValueError("the prompt is empty: describe what to draw")
        if not 1 <= self.steps <= 200:
            raise ValueError(f"steps must be between 1 and 200, got {self.steps}")
        if not 0 <= self.guidance <= 30:
            raise ValueError(f"guidance must be between 0 and 30, got {self.guidance}")
        if not 1 <= self.count <= MAX_COUNT:
            raise ValueError(f"count must be between 1 and {MAX_COUNT}, got {self.count}")
        if self.width < 0 or self.height < 0 or self.width > 4096 or self.height > 4096:
            raise ValueError("width and height must be between 0 (native) and 4096")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of: {', '.join(SAMPLERS)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not -1 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be -1 (random) or a whole number from 0 to {MAX_SEED}, got {self.seed!r}")
        if self.stacking not in STACKING_MODES:
            raise ValueError(f"stacking must be one of {', '.join(STACKING_MODES)}, got {self.stacking!r}")
        if self.quantize not in QUANTIZE_MODES:
            raise ValueError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}, got {self.quantize!r}")
        if self.fuse and self.quantize != "none":
            # peft cannot merge a LoRA into torchao int8 weights (it would have to re-quantize them)
            raise ValueError("fuse cannot be combined with int8: LoRAs run unfused on an int8 model; turn one off")
        if self.svdiffs and self.quantize != "none":
            # SVDiff rebuilds float weights from their singular values; int8 weights have none to shift
            raise ValueError("SVDiff files need float weights: turn int8 off to use them")
        if self.fast:
            from studio.generate.fast import check_fast_model

            check_fast_model(self.model)
        # stored as plain dicts (they go into the PNG), checked as specs
        self.loras = [(s if isinstance(s, LoraSpec) else LoraSpec.from_dict(s)).to_dict() for s in self.loras]
        self.embeddings = [
            (s if isinstance(s, EmbeddingSpec) else EmbeddingSpec.from_dict(s)).to_dict() for s in self.embeddings
        ]
        self.svdiffs = [(s if isinstance(s, SvdiffSpec) else SvdiffSpec.from_dict(s)).to_dict() for s in self.svdiffs]

    @property
    def lora_specs(self) -> list[LoraSpec]:
        """The LoRAs to apply: the user's, plus the shipped LCM-LoRA in fast mode."""
        specs = [LoraSpec.from_dict(s) for s in self.loras]
        if self.fast:
            from studio.generate.fast import pocket_lcm_lora

            specs.append(pocket_lcm_lora())
        return specs

    @property
    def embedding_specs(self) -> list[EmbeddingSpec]:
        return [EmbeddingSpec.from_dict(s) for s in self.embeddings]

    @property
    def svdiff_specs(self) -> list[SvdiffSpec]:
        return [SvdiffSpec.from_dict(s) for s in self.svdiffs]

    @classmethod
    def from_dict(cls, values: dict) -> GenerationSettings:
        """Build from a dict, refusing keys we do not know (a typo must not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown generation setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)


def fast_form_values(fast: bool) -> dict:
    """The sampler, steps and guidance that go with fast mode on (fast.py), or back to the defaults when off."""
    from studio.generate.fast import FAST_GUIDANCE, FAST_STEPS

    if fast:
        return {"sampler": "lcm", "steps": FAST_STEPS, "guidance": FAST_GUIDANCE}
    defaults = GenerationSettings(prompt="-")
    return {"sampler": defaults.sampler, "steps": defaults.steps, "guidance": defaults.guidance}


@dataclass
class GeneratedImage:
    image: Image.Image
    params: dict  # everything needed to make this exact image again


class PipelineCache:
    """Keeps one base model loaded; loading another (or the same one quantized differently) releases the first."""

    def __init__(self, loader: Callable | None = None) -> None:
        # the default loader is imported on the first load: building the app must not import torch
        # (measured: 2 s and ~180 MB of an idle studio before anyone generates)
        self._loader = loader
        self._key: tuple | None = None
        self._loaded = None
        self.loads = 0  # how many times a model was actually loaded

    def get(self, model: str, device: str | None = None, dtype=None, quantize: str = "none", **options):
        """The loaded model; `options` go to the loader (e.g. config_folder, allow_pickle)."""
        # quantization is part of the key: an int8 pipeline is never handed to a float request, nor back
        key = (model, device, str(dtype), quantize, tuple(sorted(options.items())))
        if key != self._key:
            self.release()
            if self._loader is None:
                from studio.models import load_pipeline

                self._loader = load_pipeline
            loaded = self._loader(model, device=device, dtype=dtype, **options)
            if quantize != "none":
                from studio.generate.quantize import quantize_pipeline

                quantize_pipeline(loaded.pipe, quantize)
            self._loaded = loaded
            self._key = key
            self.loads += 1
        return self._loaded

    def release(self) -> None:
        if self._loaded is None:
            return
        self._loaded, self._key = None, None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class GenerationEngine:
    def __init__(
        self,
        cache: PipelineCache | None = None,
        device: str | None = None,
        load_options: dict | None = None,
        allow_pickle_adapters: bool = False,
    ) -> None:
        self.cache = cache or PipelineCache()
        self.device = device
        self.load_options = load_options or {}  # e.g. config_folder for a single-file checkpoint
        self.allow_pickle_adapters = allow_pickle_adapters
        # the adapters loaded into each pipeline; weak, so releasing a base model releases its adapters too
        self._stacks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # one pipeline, several tabs: a generate, a grid cell and a LoRA merge must not interleave
        self.lock = threading.RLock()
        # each model's own scheduler: every sampler is built from its config,
        # so switching samplers never drifts from the model's noise schedule
        self._model_schedulers: dict[int, object] = {}

    def load(self, model: str, quantize: str = "none"):
        """Load (or reuse) a base model; generate() does this itself, callers may do it early."""
        return self.cache.get(model, device=self.device, quantize=quantize, **self.load_options)

    def adapters(self, pipe) -> AdapterStack:
        """The adapter stack of a loaded pipeline (created empty on first use)."""
        if pipe not in self._stacks:
            self._stacks[pipe] = AdapterStack(allow_pickle=self.allow_pickle_adapters)
        return self._stacks[pipe]

    def prepare(self, settings: GenerationSettings):
        """Load the base model and make `settings`' LoRAs, SVDiff files and embeddings the active ones; returns the
        loaded model."""
        loaded = self.load(settings.model, settings.quantize)
        stack = self.adapters(loaded.pipe)
        stack.apply_embeddings(loaded.pipe, settings.embedding_specs)
        stack.apply_svdiffs(loaded.pipe, settings.svdiff_specs)  # before the LoRAs: it edits the base weights
        specs = self._stack_for_prompt(settings)
        composite = settings.stacking == "composite" and sum(spec.enabled for spec in specs) >= 2
        # composite switches adapters at every step, which fused weights cannot do
        stack.apply_loras(loaded.pipe, specs, fuse=settings.fuse and not composite)
        return loaded

    @staticmethod
    def _stack_for_prompt(settings: GenerationSettings) -> list[LoraSpec]:
        specs = settings.lora_specs
        return specs if settings.stacking == "sum" else scope_to_prompt(specs, settings.prompt)

    def _composite_members(self, pipe, settings: GenerationSettings) -> tuple[list[tuple[str, float]], Callable]:
        """(adapter name, weight) of each LoRA LoRA Composite keeps apart (none unless two or more are on), and
        how to re-apply one's per-block weights."""
        active = [spec for spec in self._stack_for_prompt(settings) if spec.enabled]
        if settings.stacking != "composite" or len(active) < 2:
            return [], lambda name: None
        stack = self.adapters(pipe)
        named = {stack.adapter_name(pipe, spec): spec for spec in active}
        return [(name, spec.weight) for name, spec in named.items()], lambda name: AdapterStack.scale_blocks(
            pipe, [(name, named[name])]
        )

    def native_size(self, pipe) -> tuple[int, int]:
        side = pipe.unet.config.sample_size * pipe.vae_scale_factor
        return side, side

    def generate(
        self, settings: GenerationSettings, on_step: Callable[[int, int], None] | None = None
    ) -> list[GeneratedImage]:
        with self.lock:
            return self._generate(settings, on_step)

    def _generate(
        self, settings: GenerationSettings, on_step: Callable[[int, int], None] | None
    ) -> list[GeneratedImage]:
        import torch

        loaded = self.prepare(settings)
        pipe = loaded.pipe
        model_scheduler = self._model_schedulers.setdefault(id(pipe), pipe.scheduler)
        sampler = settings.sampler
        if sampler == "default" and any(s.enabled and s.is_lcm for s in settings.lora_specs):
            sampler = "lcm"  # an LCM-LoRA samples in a few steps, but only with the LCM scheduler
        pipe.scheduler = make_scheduler(sampler, model_scheduler)

        width, height = settings.width, settings.height
        native_w, native_h = self.native_size(pipe)
        width, height = width or native_w, height or native_h
        # the UNet halves the latent once per extra block; the pipelines also insist on multiples of 8
        multiple = math.lcm(8, pipe.vae_scale_factor * 2 ** (len(pipe.unet.config.block_out_channels) - 1))
        if width % multiple or height % multiple:
            raise ValueError(f"width and height must be multiples of {multiple} for this model, got {width}x{height}")

        seed = settings.seed if settings.seed >= 0 else random.randrange(2**31)
        total = math.ceil(settings.count / CHUNK) * settings.steps  # one callback per step of each batch
        done = 0

        def step_end(_pipe, _step, _timestep, kwargs):
            nonlocal done
            done += 1
            if on_step:
                on_step(done, total)
            return kwargs

        results = []
        members, rescale = self._composite_members(pipe, settings)
        with composite_unet(pipe, members, rescale):
            for start in range(0, settings.count, CHUNK):
                seeds = [seed + i for i in range(start, min(settings.count, start + CHUNK))]
                generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
                started = time.perf_counter()
                images = pipe(
                    [settings.prompt] * len(seeds),
                    negative_prompt=[settings.negative_prompt] * len(seeds) if settings.negative_prompt else None,
                    num_inference_steps=settings.steps,
                    guidance_scale=settings.guidance,
                    width=width,
                    height=height,
                    generator=generators,
                    callback_on_step_end=step_end,
                ).images
                seconds = (time.perf_counter() - started) / len(seeds)
                for image_seed, image in zip(seeds, images):
                    params = asdict(settings) | {
                        "seed": image_seed,
                        "count": 1,
                        "width": width,
                        "height": height,
                        "sampler": sampler,
                        "family": getattr(loaded.family, "value", loaded.family),
                        "seconds": round(seconds, 3),
                    }
                    results.append(GeneratedImage(image, params))
        return results


def save_images(results: list[GeneratedImage], out_dir: str | Path) -> list[Path]:
    """Write each image as a PNG that carries its parameters, under a name of its own: time, index and seed for
    the reader, and a random part, so two saves in the same second with the same seed never overwrite each other
    and no name can be guessed from the time and the (default) seed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    paths = []
    for index, result in enumerate(results):
        path = out / f"{stamp}-{index:02d}-seed{result.params['seed']}-{secrets.token_hex(6)}.png"
        while path.exists():  # 48 random bits: only in theory
            path = path.with_name(f"{stamp}-{index:02d}-seed{result.params['seed']}-{secrets.token_hex(6)}.png")
        paths.append(save_png(result.image, path, result.params))
    return paths
