"""What a run will cost before it starts: time (loading, steps, samples, export), memory (RAM and GPU apart, for
the device and precision it will run at) and disk (checkpoints kept, exports).

Sizes come from the model's configs (studio/models/sizes.py: parameters per part, one UNet step's operations and
the activations autograd keeps, counted on the meta device), and the machine's speed from measurements:

1. finished runs here of the same model, resolution and method give seconds per image-step, loading seconds and
   the seconds from the last step to the end (final checkpoint, exports, their check): the most exact basis;
2. else finished runs here of any SD-size model on the same kind of device give this machine's operations per
   second, which the model's own count turns into seconds;
3. else a device's figures from BENCHMARKS.md (the CPU ones measured on the studio's 2-core machine at SD 1.5
   size; a GPU's are the usual fraction of a current card's peak, and say so).

The pocket model keeps its own measured per-step figures (its operations are too small for the rate to apply).

What a method trains and writes comes from its registry entry (studio/train/methods/<name>/__init__.py: its
MethodFacts), so this file knows no method by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio.train.config import RunConfig
from studio.train.methods import facts, get

GB = 1e9
# CPU, float32, one thread: the rate that fits both SD 1.5 runs measured on the studio's shared 2-core machine
# (random weights, 512 px; bench/real_size.py, BENCHMARKS.md): a LoRA step of 1 image took 43-69 s, a DreamBooth
# step of 2 (prior preservation) with gradient checkpointing 97-134 s. Alone, one UNet forward pass ran at 63.
CPU_GFLOPS_PER_THREAD = 55.0
CPU_MEMORY_GB_PER_S = 4.0  # optimizer and gradient passes over every trained weight
# a GPU's sustained training rate: about 40 % of a 30-series / 40-series card's dense fp16 peak (not measured here)
GPU_GFLOPS = {"fp16": 35_000.0, "bf16": 35_000.0, "no": 12_000.0}
GPU_MEMORY_GB_PER_S = 500.0
LOAD_GB_PER_S = 0.2  # reading safetensors and building the modules, from a warm disk
READ_GB_PER_S = 1.0  # reading a file just written back (from the page cache)
WRITE_GB_PER_S = 0.5  # checkpoints and exports, fsynced (SD 1.5 DreamBooth's 10.3 GB checkpoint: 21 s)
# writing LoRA files in two formats, converting them, loading each beside the trained adapter (peft injects its
# layers anew): 18 s after the last SD 1.5 step, 13 s more than the check's compute (bench/real_size.py)
LORA_EXPORT_SECONDS = 13.0
PROCESS_SECONDS = 15.0  # start Python, import torch, diffusers, transformers, peft and accelerate
PROCESS_RAM_GB = 0.5  # the training process before it loads a model (peak RSS of a toy-sized run: 0.46 GB)
CUDA_CONTEXT_GB = 0.6
# PyTorch's SDPA picks a fused kernel for training on CPU (flash) and GPU (flash / memory-efficient): the
# tokens x tokens attention probabilities the meta trace sees saved are never held (SD 1.5 LoRA at 512 px on the
# CPU peaked at 7.0 GB; with them the estimate said 14.0)
ACTIVATION_FACTOR = 1.0
# A backward pass costs about 2x the forward. Without weight gradients (LoRA's frozen base, Textual Inversion) it
# should cost less, but on this CPU it did not: an SD 1.5 LoRA step took as long per image as a full DreamBooth one
BACKWARD = {"all": 2.0, "part": 2.0}
ADAM_BYTES = {"adamw": 8, "adamw8bit": 2}  # optimizer state per trained parameter
EMBEDDING_WIDTH = 768  # one new token row of SD 1.5's text encoder
WEIGHTS_PER_SINGULAR_VALUE = 4000  # SVDiff's shifts: 0.86 M for SD 1.5's UNet (BENCHMARKS.md)


@dataclass
class Estimate:
    seconds: float | None
    memory_gb: float | None  # on the device that trains: RAM on a CPU, GPU memory on a GPU
    basis: str
    ram_gb: float | None = None
    gpu_gb: float | None = None
    disk_gb: float = 0.0
    checkpoint_gb: float = 0.0
    checkpoints_kept: int = 0
    parts: dict[str, float] = field(default_factory=dict)  # load, steps, samples, export: seconds each
    device: str = "cpu"

    def describe(self) -> str:
        from studio.train.monitor import format_duration

        if self.seconds is None:
            time_text = "unknown time"
        else:
            shown = ", ".join(f"{name} {format_duration(s)}" for name, s in self.parts.items() if s >= 1)
            time_text = f"about {format_duration(self.seconds)}" + (f" ({shown})" if shown else "")
        if self.gpu_gb is not None:
            memory = f"GPU memory about {self.gpu_gb:.1f} GB, RAM about {self.ram_gb:.1f} GB"
        elif self.ram_gb is not None:
            memory = f"RAM about {self.ram_gb:.1f} GB (CPU, no GPU memory)"
        else:
            memory = f"about {self.memory_gb:g} GB of memory" if self.memory_gb is not None else "unknown memory"
        disk = (
            f"disk about {self.disk_gb:.1f} GB ({self.checkpoints_kept} checkpoint(s) of {self.checkpoint_gb:.2f} GB "
            "kept)"
        )
        return f"{time_text}; {memory}; {disk} [{self.basis}]"


@dataclass(frozen=True)
class Work:
    """What one run does, in operations and bytes, from the model's configs and the run's settings."""

    device: str  # "cpu" or "cuda"
    precision: str  # mixed_precision: no, fp16, bf16
    threads: int
    step_gflops: float
    trained_params: int
    total_params: int
    frozen_bytes: int  # frozen weights in the precision they are held at
    activation_gb: float
    load_gflops: float  # latents cached, class images drawn
    samples_gflops: float
    export_gflops: float
    checkpoint_gb: float
    export_gb: float


def training_device(config: RunConfig) -> str:
    import torch

    wanted = config.training.device
    return "cuda" if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()) else "cpu"


def method_kind(config: RunConfig) -> str:
    """What runs are compared by: the method, or its variant where that trains differently (DreamBooth-LoRA)."""
    return facts(config).kind


def trained_modules(config: RunConfig) -> tuple[str, ...] | None:
    """The UNet modules whose weights take gradients (None: all of them; (): none, Textual Inversion)."""
    return facts(config).unet_modules


def trained_parameters(config: RunConfig, configs, unet: int, text: int) -> int:
    """Parameters the optimizer holds: the whole UNet, a few embedding rows, or the adapters (counted on the UNet)."""
    from studio.models import sizes

    method = facts(config)
    if method.trains == "model":
        return unet + (text if method.text_encoder_learns else 0)
    if method.trains == "embeddings":
        return EMBEDDING_WIDTH * method.embedding_vectors
    if method.trains == "shifts":
        return unet // WEIGHTS_PER_SINGULAR_VALUE
    if method.trains == "values":
        return method.trained_values
    return sizes.adapter_parameters(configs, method.unet_modules, method.adapter_rank)


def _threads(device: str) -> int:
    from studio.runtime import thread_budget

    return 1 if device != "cpu" else thread_budget("train")


def run_work(config: RunConfig, image_count: int = 4) -> Work:
    from studio.models import sizes

    training, method = config.training, facts(config)
    configs = sizes.model_configs(training.base_model)
    counts = sizes.parameters(configs)
    device = training_device(config)
    batch = training.batch_size * training.gradient_accumulation * (2 if method.prior_preservation else 1)
    trained = method.unet_modules
    profile = sizes.unet_step(configs, training.resolution, 1, trained, training.gradient_checkpointing)
    backward = BACKWARD["all" if trained is None else "part"]
    recompute = 1.0 if training.gradient_checkpointing else 0.0
    text = sizes.text_encoder_gflops(configs)
    step = batch * profile.forward_gflops * (1 + backward + recompute)
    if method.text_encoder_learns:
        step += batch * text * 3  # the text encoder forward and backward, every step
    encode, decode = sizes.vae_gflops(configs, training.resolution)
    if not training.cache_latents:
        step += batch * encode
    latents = image_count * encode * (2 if training.random_flip else 1) if training.cache_latents else 0.0
    draw = _images_to_draw(config) * (method.draw_steps * 2 * profile.forward_gflops + decode)
    renders = (training.steps // training.sample_every if training.sample_every else 0) * len(training.sample_prompts)
    samples = renders * (training.sample_steps * 2 * profile.forward_gflops + decode)
    check = _export_check_gflops(config, configs, profile.forward_gflops, decode)
    trained_count = trained_parameters(config, configs, counts.unet, counts.text_encoders)
    half = training.mixed_precision != "no" and device != "cpu"
    frozen = (counts.total - trained_count) * (2 if half else 4)
    if method.keeps_average:  # the fine-tune's averaged copy of the UNet, in float32
        frozen += counts.unet * 4
    adam = ADAM_BYTES[training.optimizer]
    checkpoint = trained_count * (4 + adam) / GB
    export = counts.total * (2 if half else 4) / GB if method.exports == "model" else trained_count * 4 / GB
    return Work(
        device=device,
        precision=training.mixed_precision,
        threads=_threads(device),
        step_gflops=step,
        trained_params=trained_count,
        total_params=counts.total,
        frozen_bytes=frozen,
        activation_gb=batch * _held(profile) * (0.5 if half else 1.0) * ACTIVATION_FACTOR,
        load_gflops=latents + draw + text * image_count,
        samples_gflops=samples,
        export_gflops=check,
        checkpoint_gb=checkpoint,
        export_gb=export,
    )


def _held(profile) -> float:
    """GB of activations held for the backward pass of one image: what is saved, plus the unit recomputed under
    gradient checkpointing, less the attention probabilities a fused kernel never keeps."""
    return profile.saved_gb + profile.recompute_gb - profile.attention_gb


def _images_to_draw(config: RunConfig) -> int:
    """Images the run draws with the base model before training and has not cached (DreamBooth's class images)."""
    count = get(config.method).images_to_draw
    return count(config) if count is not None else 0


def _export_check_gflops(config: RunConfig, configs, forward: float, decode: float) -> float:
    """The export check (export_check.py): quick is one small unguided step per LoRA file and the reference."""
    from studio.train.export_check import check_resolution

    check = config.training.export_check
    if check == "skip":
        return 0.0
    lora = facts(config).exports == "lora"
    files = 2 if lora else 1
    if check == "quick":
        small = forward * (check_resolution(config.training.resolution) / config.training.resolution) ** 2
        return small * (1 + files) if lora else 0.0
    return (1 + files) * (4 * 2 * forward + decode)  # a guided four-step render each, decoded


def _gflops_per_second(work: Work) -> float:
    if work.device == "cpu":
        return CPU_GFLOPS_PER_THREAD * work.threads
    return GPU_GFLOPS[work.precision]


def memory(work: Work) -> tuple[float, float | None]:
    """(RAM GB, GPU GB or None): the peak of training, when activations, gradients and optimizer state are all
    held at once (the quick export check adds no second model)."""
    adam = 8 if work.trained_params else 0
    trained = work.trained_params * (4 + 4 + adam) / GB  # weights in float32, gradients, optimizer state
    device_gb = work.frozen_bytes / GB + trained + work.activation_gb
    if work.device == "cpu":
        return PROCESS_RAM_GB + device_gb, None
    # on a GPU the RAM holds the process and, while loading, the largest part before it moves
    return PROCESS_RAM_GB + work.frozen_bytes / GB * 0.6, CUDA_CONTEXT_GB + device_gb


def from_config(config: RunConfig, image_count: int = 4, gflops_per_second: float | None = None) -> Estimate:
    training, method = config.training, facts(config)
    work = run_work(config, image_count)
    rate = gflops_per_second or _gflops_per_second(work)
    bandwidth = CPU_MEMORY_GB_PER_S if work.device == "cpu" else GPU_MEMORY_GB_PER_S
    optimizer = work.trained_params * 4 * 6 / GB / bandwidth  # read and write weights, gradients, two moments
    step = work.step_gflops / rate + optimizer
    model_gb = work.total_params * 4 / GB
    saves = (training.steps // training.checkpoint_every if training.checkpoint_every else 0) + 1
    parts = {
        "load": PROCESS_SECONDS + model_gb / LOAD_GB_PER_S + work.load_gflops / rate,
        f"{training.steps} steps": training.steps * step + saves * work.checkpoint_gb / WRITE_GB_PER_S,
        "samples": work.samples_gflops / rate,
        "export": work.export_gb / WRITE_GB_PER_S
        + work.export_gflops / rate
        + _check_read_seconds(config, work)
        + (LORA_EXPORT_SECONDS if method.exports == "lora" else 0.0),
    }
    ram, gpu = memory(work)
    if training.export_check == "full" or (training.export_check == "quick" and method.check_reloads_base):
        ram += model_gb  # a fresh float32 base on the CPU beside the trained one (full check: 11.7 GB, not 7.1)
    kept = min(training.keep_checkpoints, saves)
    basis = "from the model's configs and this device's measured speed"
    if gflops_per_second:
        basis = "from the model's configs and the speed measured on earlier runs here"
    return Estimate(
        seconds=sum(parts.values()),
        memory_gb=round(gpu if gpu is not None else ram, 1),
        basis=basis,
        ram_gb=ram,
        gpu_gb=gpu,
        disk_gb=kept * work.checkpoint_gb + work.export_gb,
        checkpoint_gb=work.checkpoint_gb,
        checkpoints_kept=kept,
        parts=parts,
        device=work.device,
    )


def _check_read_seconds(config: RunConfig, work: Work) -> float:
    """A pipeline folder's quick check reads its weights back; full loads the base model again per file."""
    if config.training.export_check == "full":
        return 2 * work.total_params * 4 / GB / LOAD_GB_PER_S
    if config.training.export_check == "quick" and facts(config).exports == "model":
        return work.export_gb / READ_GB_PER_S
    return 0.0


def peak_memory(device_type: str) -> dict[str, float]:
    """This process's peak memory so far, for the finished event: what later estimates of the same run read."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    out = {"peak_ram_gb": round(peak / GB, 2)}
    if device_type == "cuda":
        import torch

        out["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / GB, 2)
    return out


def free_disk_gb(folder: Path) -> float:
    import shutil

    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free / GB


def available_ram_gb() -> float | None:
    """Memory the kernel can still give (MemAvailable), None where it does not say."""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GB
    except OSError:
        return None
    return None


def gpu_memory_gb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory / GB


def estimate(config: RunConfig, runs_root: Path | None = None, image_count: int = 4) -> Estimate:
    """The run's estimate from the most exact basis there is (see the module's docstring)."""
    import statistics

    from studio.train.measured_runs import measured_runs

    history = measured_runs(runs_root) if runs_root and Path(runs_root).is_dir() else []
    if config.training.base_model == "pocket":
        return _pocket(config, history, image_count)
    same = [run for run in history if same_run_shape(run.config, config)]
    if same:
        return from_same_runs(config, same, image_count)
    device = training_device(config)
    rates = []
    for run in history:
        if run.config.training.base_model == "pocket" or training_device(run.config) != device:
            continue
        try:
            work = run_work(run.config, image_count)
        except (ValueError, OSError):
            continue
        images = run.config.training.batch_size * run.config.training.gradient_accumulation
        rates.append(work.step_gflops / images / run.seconds_per_image_step)
    return from_config(config, image_count, statistics.median(rates) if rates else None)


def same_run_shape(a: RunConfig, b: RunConfig) -> bool:
    keys = ("base_model", "resolution", "mixed_precision", "gradient_checkpointing", "device", "export_check")
    return method_kind(a) == method_kind(b) and all(getattr(a.training, k) == getattr(b.training, k) for k in keys)


def from_same_runs(config: RunConfig, same: list, image_count: int) -> Estimate:
    """The model's estimate with what earlier runs of the same shape measured in place of its guesses."""
    import statistics

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    modelled = from_config(config, image_count)
    training = config.training
    images = training.batch_size * training.gradient_accumulation
    parts = dict(modelled.parts)
    steps_key = f"{training.steps} steps"
    parts[steps_key] = training.steps * images * statistics.median(r.seconds_per_image_step for r in same)
    parts["load"] = median([r.load_seconds for r in same]) or parts["load"]
    # the tail is the final save and the export: measured as a whole
    parts["export"] = median([r.tail_seconds for r in same]) or parts["export"]
    ram, gpu = median([r.peak_ram_gb for r in same]), median([r.peak_gpu_gb for r in same])
    modelled.parts, modelled.seconds = parts, sum(parts.values())
    modelled.basis = f"measured on {len(same)} earlier run(s) of this model and method here"
    if ram is not None and training.batch_size == same[0].config.training.batch_size:
        modelled.ram_gb = ram
    if gpu is not None and training.batch_size == same[0].config.training.batch_size:
        modelled.gpu_gb = gpu
    modelled.memory_gb = round(modelled.gpu_gb if modelled.gpu_gb is not None else modelled.ram_gb, 1)
    return modelled


# Pocket model, 64 px, CPU with one training thread beside the UI (each method's measured seconds per image-step
# are its facts' pocket_seconds_per_image_step)
POCKET_RESOLUTION = 64
POCKET_LOAD_SECONDS = 12.0  # start the process, load the model, cache latents
POCKET_EXPORT_SECONDS = 4.0  # write the exports and check them
SECONDS_PER_SAMPLE_STEP = 0.12  # one denoising step of one 64 px validation sample
POCKET_RAM_GB = 1.0
POCKET_CHECKPOINT_GB = {False: 0.02, True: 0.07}  # an adapter's checkpoint; the whole UNet's (5.5 M weights + Adam)


def _pocket(config: RunConfig, history: list, image_count: int) -> Estimate:
    """The pocket model: its own measured figures (per image-step, scaled by pixels), or earlier pocket runs. No
    torch: the Train tab's estimate of the default model costs nothing."""
    import statistics

    training, method = config.training, facts(config)
    kind = method.kind
    scale = (training.resolution / POCKET_RESOLUTION) ** 2
    same = [
        r for r in history if method_kind(r.config) == kind and r.config.training.base_model == "pocket"
        and r.config.training.resolution == training.resolution
    ]  # fmt: skip
    per_image_step = method.pocket_seconds_per_image_step * scale
    basis = "pocket model on a 2-core CPU"
    if same:
        per_image_step = statistics.median(r.seconds_per_image_step for r in same)
        basis = "measured on earlier runs of this model here"
    renders = (training.steps // training.sample_every if training.sample_every else 0) * len(training.sample_prompts)
    images = training.batch_size * training.gradient_accumulation
    parts = {
        "load": POCKET_LOAD_SECONDS,
        f"{training.steps} steps": training.steps * images * per_image_step,
        "samples": renders * training.sample_steps * SECONDS_PER_SAMPLE_STEP * scale,
        "export": POCKET_EXPORT_SECONDS,
    }
    saves = (training.steps // training.checkpoint_every if training.checkpoint_every else 0) + 1
    kept = min(training.keep_checkpoints, saves)
    checkpoint = POCKET_CHECKPOINT_GB[method.trains == "model"]
    return Estimate(
        seconds=sum(parts.values()),
        memory_gb=POCKET_RAM_GB,
        basis=basis,
        ram_gb=POCKET_RAM_GB,
        disk_gb=kept * checkpoint + checkpoint / 3,
        checkpoint_gb=checkpoint,
        checkpoints_kept=kept,
        parts=parts,
    )
