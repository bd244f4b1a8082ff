"""The search's proxy: a brief run of the one training loop (:mod:`nas.training.core`) with the proxy's recipe,
then the held-out accuracy with BatchNorm statistics re-estimated.

On CUDA: bf16 autocast and channels_last. On CPU: float32 and channels_last (2 to 4 times faster than NCHW
for these nets at 32-64 px); the thread count is the caller's. A NaN or infinite loss stops the candidate,
which is returned as failed with the reason.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch

from nas.data.datasets import ImageSplits
from nas.training.core import Training, TrainingDiverged, build_for_training
from nas.training.device_data import DeviceData, default_device, recalibrate_batchnorm, top1_accuracy
from nas.training.recipe import TrainRecipe, proxy_recipe
from search_spaces.spec import ArchSpec

RungReport = Callable[[int, float], None]


def train_candidate(spec: ArchSpec, data: ImageSplits, recipe: TrainRecipe | None = None,
                    device: str | torch.device | None = None, seed: int = 0, rungs: Sequence[int] = (),
                    report: RungReport | None = None) -> dict[str, Any]:
    """Train ``spec`` briefly on ``data`` and return its held-out accuracy.

    Returns ``{"status": "ok"|"failed", "accuracy", "final_loss", "train_loss" (the mean over every step),
    "train_seconds", "images_per_second",
    "steps", "device", "reason"}``; a failed candidate has accuracy 0 and a reason. With ``rungs`` and
    ``report``, the held-out accuracy is also measured at those steps and passed to ``report(step, accuracy)``.
    """
    model = build_for_training(spec, data.num_classes, seed)
    return train_model(model, data, recipe, device, seed, rungs, report)


def _accuracy_at_rung(training: Training, val: DeviceData) -> float:
    """Held-out accuracy in the middle of training, leaving the rest of the run exactly as without it:
    the random streams (drop connect and dropout draw from torch's global generator while BatchNorm is
    re-estimated) are restored, and training-mode BatchNorm ignores the re-estimated running statistics."""
    devices = [val.device] if val.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        recalibrate_batchnorm(training.model, training.train, training.autocast)
        return top1_accuracy(training.model, val, training.autocast)


def proxy_splits(data: ImageSplits, device: torch.device) -> tuple[DeviceData, DeviceData]:
    """The training and held-out images on ``device``, normalised by the training images' statistics."""
    pixels = data.x_train.reshape(-1, 3)
    mean = torch.from_numpy(pixels.mean(0) / 255).float().to(device).view(1, 3, 1, 1)
    std = torch.from_numpy(pixels.std(0) / 255 + 1e-3).float().to(device).view(1, 3, 1, 1)
    return (DeviceData(data.x_train, data.y_train, device, mean, std),
            DeviceData(data.x_val, data.y_val, device, mean, std))


def train_model(model: torch.nn.Module, data: ImageSplits, recipe: TrainRecipe | None = None,
                device: str | torch.device | None = None, seed: int = 0, rungs: Sequence[int] = (),
                report: RungReport | None = None, compile_mode: str | None = None) -> dict[str, Any]:
    """The proxy run for any classifier taking NCHW input (used for ours and, in benchmarks, timm's).

    ``recipe``: the proxy's (:func:`proxy_recipe`, 300 steps) unless given; its seed is ``seed``.
    ``rungs``/``report``: see :func:`train_candidate`; a rung at or past the last step is ignored.
    ``compile_mode`` (e.g. ``"reduce-overhead"``, CUDA graphs): the training forward runs through
    ``torch.compile``; if compiling fails the run goes on eagerly and ``result["compiled"]`` says so.
    """
    recipe = TrainRecipe.from_dict({**(recipe or proxy_recipe()).to_dict(), "seed": seed})
    device = torch.device(device or default_device())
    model = model.to(device).to(memory_format=torch.channels_last)
    train, val = proxy_splits(data, device)
    training = Training(model, train, recipe, compile_mode=compile_mode)
    result: dict[str, Any] = {"status": "ok", "reason": "", "steps": 0, "device": str(device)}
    stops = sorted({r for r in rungs if 0 < r < training.total_steps} if report is not None else set())
    training.synchronize()
    start = time.perf_counter()
    loss_sum = 0.0
    try:
        for stop in stops + [training.total_steps]:
            first = training.step
            loss_sum += training.run(stop) * (training.step - first)
            if stop in stops:
                report(stop, _accuracy_at_rung(training, val))
    except TrainingDiverged as exc:
        result.update(status="failed", reason=str(exc))
    training.synchronize()
    seconds = time.perf_counter() - start
    result.update(steps=training.step, final_loss=training.last_loss, train_seconds=seconds,
                  train_loss=loss_sum / max(1, training.step),
                  images_per_second=training.step * training.batch_size / max(seconds, 1e-9),
                  compiled=training.compiled, accuracy=0.0)
    if result["status"] == "ok":
        recalibrate_batchnorm(model, train, training.autocast)
        result["accuracy"] = top1_accuracy(model, val, training.autocast)
    return result
