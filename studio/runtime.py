"""Process-wide settings that must be chosen before heavy work starts.

CPU threads are a budget, not a free resource: on a 2-core host two busy
PyTorch processes with default threads slow each other down ~8x, because
OpenMP threads spin while they wait. The studio runs the UI (with preview
generation) and a training process side by side, so each process takes a
share of the cores and waiting threads sleep instead of spinning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from studio.paths import is_pocket_model


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def prepare_environment() -> None:
    """Call first thing in an entry point, before torch is imported."""
    # Sleeping (not spinning) OpenMP threads: essential when processes share cores.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # No telemetry, and no surprise downloads: the hub is used only when the
    # user names a hub model, and then only if it is cached or reachable.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # torchao (the optional int8 extra) is imported by transformers whenever it is installed, and on a machine
    # without its GPU kernels logs a "Failed to load …_C_mxfp8…" warning per kernel; nothing here uses those
    logging.getLogger("torchao").setLevel(logging.ERROR)


def thread_budget(role: str, sharing: bool = False) -> int:
    """Threads for a process in `role`: "train", or "ui"/"generate".

    `STUDIO_THREADS` overrides. Alone (`sharing=False`), a process takes
    every core. When training runs beside the UI, the UI keeps one core for
    previews and training gets the rest.
    """
    override = os.environ.get("STUDIO_THREADS")
    if override:
        return max(1, int(override))
    cores = cpu_cores()
    if not sharing:
        return cores
    return max(1, cores - 1) if role == "train" else 1


def apply_thread_budget(threads: int) -> None:
    """Give this process `threads` compute threads. Before torch is imported, through the environment (torch reads
    OMP_NUM_THREADS when it starts), so a process that never computes (the idle UI) never loads torch for it."""
    import sys

    if "torch" not in sys.modules:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        return
    import torch

    torch.set_num_threads(threads)


@contextmanager
def pocket_training_threads(base_model: str, device_type: str) -> Iterator[None]:
    """Train the pocket model on the CPU on one thread, whatever the budget; other models and devices keep theirs.
    The thread count is restored afterwards (exports and previews draw images, which do use a second thread).

    The pocket model's operations are too small to split: on 2 cores (2026-11-23, BENCHMARKS.md) the `lora-pocket`
    preset trained in 52 s on one thread and 84 s on two (its ~120 small adapters wake the sleeping second thread
    thousands of times a step), and DreamBooth, Textual Inversion and full fine-tune steps took as long on one
    thread as on two. So the second core is free for the UI at no cost.
    """
    import torch

    before = torch.get_num_threads()
    if device_type == "cpu" and is_pocket_model(base_model):
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
