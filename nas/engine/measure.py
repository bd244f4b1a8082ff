"""What a trial does: count the network with fvcore, train it on its data, measure the held-out accuracy.

A trial measures; it does not score. The reward is computed on the driver from the measured accuracy and
FLOPs, so a run can be rescored and a cached result can serve any target.
"""
from __future__ import annotations

import ctypes
import gc
import time
from typing import Any, Callable

from nas.data.datasets import ImageSplits, resize_images
from nas.engine.job import Job, Measurement, failed
from nas.network.counting import profile
from nas.network.scaling import scale_spec
from search_spaces.spec import load_spec


def trial_device(cpus: float | None, gpus: float | None) -> str:
    """Set this trial's torch threads to its CPU share and return its device ("cuda" with a GPU share)."""
    import torch

    torch.set_num_threads(max(1, int(cpus or 1)))
    return "cuda" if gpus and torch.cuda.is_available() else "cpu"


def release_memory() -> None:
    """Give the memory freed by a finished training back to the operating system.

    glibc's allocator keeps freed heap pages of a trial's activations and gradients mapped, so a reused
    trial worker grew by tens of MiB per trial (0.24 to 0.99 GiB over 20 trainings in one process, 2.4 GiB
    in one 16-trial search); ``malloc_trim(0)`` after each one keeps it flat (0.43 GiB). Elsewhere (no
    glibc) this only collects garbage.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def at_resolution(data: Any, resolution: int | None) -> Any:
    """``data`` with its images resized to ``resolution`` (itself when that is its own or None)."""
    if not resolution or resolution == data.resolution:
        return data

    return ImageSplits(data.name, resize_images(data.x_train, resolution), data.y_train,
                     resize_images(data.x_val, resolution), data.y_val, data.num_classes)


def measure(job: Job, data: Any, device: str = "cpu",
            report: Callable[[Measurement], None] | None = None) -> Measurement:
    """FLOPs and params with fvcore at the spec's resolution, then the job's training; the measurement.

    With ``job.rungs`` and ``report``, the held-out accuracy at each rung is passed to ``report`` as an
    intermediate measurement (``final`` False) before training goes on; a scheduler may end the trial there.
    Every failure inside is returned as a failed measurement with its reason rather than raised, so that
    one bad network never stops a command.
    """
    from nas.training.proxy import train_candidate

    started = time.perf_counter()
    measured = Measurement()
    try:
        spec = load_spec(job.spec)
        counts = profile(spec, method="fvcore")
        measured.flops, measured.params = counts["flops"], counts["params"]
        trained_on = at_resolution(data, job.train_resolution)

        def at_rung(step: int, accuracy: float) -> None:
            if report is not None:
                report(Measurement(accuracy=accuracy, flops=measured.flops, params=measured.params, steps=step,
                                   seconds=time.perf_counter() - started, final=False))

        trained = spec if job.train_width == 1 else scale_spec(spec, job.train_width, 1.0, spec.resolution)
        result = train_candidate(trained, trained_on, job.budget, device=device, seed=job.seed,
                                 rungs=job.rungs if report is not None else (), report=at_rung)
        for name in ("status", "reason", "accuracy", "train_seconds", "images_per_second", "final_loss",
                     "train_loss", "steps"):
            setattr(measured, name, result[name])
    except Exception as exc:  # noqa: BLE001 - recorded as a failed job
        measured = failed(f"{type(exc).__name__}: {exc}", flops=measured.flops, params=measured.params)
    release_memory()
    measured.seconds = time.perf_counter() - started
    return measured
