"""nas-train's training loop for one worker: plain PyTorch, DDP when a process group is up (Ray Train sets it up).

Every worker draws the same permutation of the training images each epoch and takes its share of each global
batch (``rank::world_size``); augmentation runs on the device. Rank 0 evaluates the raw and the EMA weights on
the held-out split after every epoch, writes ``metrics.csv`` and the checkpoints, and at the end measures the
test split (when there is one) with the best weights. The random streams are reseeded from (seed, epoch, rank)
at every epoch, so a resumed run continues exactly as the uninterrupted one would have.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist

from nas.data.datasets import ImageSplits
from nas.files import append_csv_rows, atomic_write
from nas.network.builder import build_model
from nas.training.checkpoints import BEST, load_checkpoint, save_checkpoint
from nas.training.core import Training, TrainingDiverged, build_for_training
from nas.training.device_data import DeviceData, default_device, top1_accuracy
from nas.training.recipe import TrainRecipe
from search_spaces.spec import ArchSpec, architecture_hash, load_spec

METRICS = "metrics.csv"
METRIC_COLUMNS = ["epoch", "loss", "val_accuracy", "ema_val_accuracy", "lr", "images_per_second", "seconds"]
STATS_IMAGES = 4096  # images the normalisation's mean and std are taken from


def channel_stats(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation (0..1 scale) of uint8 NHWC images, from a strided sample."""
    step = max(1, len(x) // STATS_IMAGES)
    sample = x[::step].reshape(-1, 3).astype(np.float32) / 255
    return sample.mean(0).tolist(), (sample.std(0) + 1e-3).tolist()


def append_metrics(out_dir: Path, row: dict[str, Any]) -> None:
    """Append one epoch's row to metrics.csv (a header first), flushed to disk."""
    append_csv_rows(Path(out_dir) / METRICS, METRIC_COLUMNS, [row])


def keep_epochs(out_dir: Path, epochs: int) -> None:
    """Drop metrics.csv rows past the checkpoint a run continues from (those epochs are trained again)."""
    path = Path(out_dir) / METRICS
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines[1:] if line.endswith("\n") and line.split(",", 1)[0].isdigit()
            and int(line.split(",", 1)[0]) <= epochs]
    if len(kept) != len(lines) - 1:
        atomic_write(path, "".join(lines[:1] + kept) if kept else "")


def _distributed(world_size: int) -> bool:
    return world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()


def _state(training: Training, epoch: int, best: dict[str, Any], spec: ArchSpec,
           stats: tuple[list[float], list[float]], selected: str) -> dict[str, Any]:
    return {"spec": spec.to_json(), "spec_name": spec.name, "spec_hash": architecture_hash(spec),
            "num_classes": spec.num_classes, "resolution": spec.resolution,
            "model": training.model.state_dict(), "ema": training.ema.module.state_dict(),
            "ema_updates": training.ema.updates, "optimizer": training.optimizer.state_dict(),
            "schedule": training.schedule.state_dict(), "epoch": epoch, "best": dict(best), "selected": selected,
            "recipe": training.recipe.to_dict(), "mean": stats[0], "std": stats[1]}


def selected_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a checkpoint chose by held-out accuracy: the EMA's or the raw model's."""
    return state["ema"] if state.get("selected") == "ema" else state["model"]


def train_network(spec: ArchSpec, data: ImageSplits, recipe: TrainRecipe, out_dir: str | Path, *,
                  device: str | torch.device | None = None, rank: int = 0, world_size: int = 1,
                  resume: dict[str, Any] | None = None,
                  on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train ``spec`` (its classifier as wide as ``data``'s classes) with ``recipe``; rank 0 writes ``out_dir``.

    ``resume``: a checkpoint's state to continue from. ``on_epoch(row)`` is called on every rank after each
    epoch (rank 0's row holds the metrics, the others' are empty). Returns, on rank 0, the last epoch's and
    the best weights' held-out and test accuracy (test: on ``data.test``, when there is one); ``{}`` on the
    other ranks. Raises TrainingDiverged when the loss stops being finite.
    """
    out_dir = Path(out_dir)
    device = torch.device(device or default_device())
    spec = spec.replace(num_classes=data.num_classes)
    model = build_for_training(spec, data.num_classes, recipe.seed).to(device).to(memory_format=torch.channels_last)
    stats = (resume["mean"], resume["std"]) if resume is not None else channel_stats(data.x_train)
    mean = torch.tensor(stats[0], device=device).view(1, 3, 1, 1)
    std = torch.tensor(stats[1], device=device).view(1, 3, 1, 1)
    forward = None
    if _distributed(world_size):
        forward = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                            else None)
    training = Training(model, DeviceData(data.x_train, data.y_train, device, mean, std), recipe, rank=rank,
                        world_size=world_size, forward=forward)
    best: dict[str, Any] = {"epoch": 0, "val_accuracy": -1.0, "weights": "raw"}
    start_epoch = 0
    if resume is not None:
        _restore(training, resume)
        start_epoch, best = int(resume["epoch"]), dict(resume["best"])
    if rank == 0:
        keep_epochs(out_dir, start_epoch)
    val = DeviceData(data.x_val, data.y_val, device, mean, std) if rank == 0 else None
    for epoch in range(start_epoch, int(recipe.epochs)):
        training.synchronize()
        started = time.perf_counter()
        try:
            loss = training.run((epoch + 1) * training.steps_per_epoch, check_every=25)
        except TrainingDiverged as exc:
            raise TrainingDiverged(f"the training {exc} (epoch {epoch + 1}); lower --lr") from None
        training.synchronize()
        seconds = time.perf_counter() - started
        row: dict[str, Any] = {}
        if rank == 0:
            row, best = _end_of_epoch(training, val, epoch, loss, seconds, best, out_dir, spec, stats)
        if on_epoch is not None:
            on_epoch(row)
    drift = replica_drift(model) if _distributed(world_size) else 0.0
    if rank != 0:
        return {}
    splits = {"val": val}
    if data.test is not None:
        splits["test"] = DeviceData(data.x_test, data.y_test, device, mean, std)
    return {**_final_accuracies(model, training.ema, out_dir, splits, device, training.autocast),
            "replica_drift": drift}


def replica_drift(model: torch.nn.Module) -> float:
    """The largest difference between this worker's weights and any other's (all ranks call it): 0 when DDP
    kept the replicas in step, as it must; anything else means the workers trained apart."""
    flat = torch.cat([p.detach().reshape(-1).float() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return float(max((g - flat).abs().max() for g in gathered))


def _restore(training: Training, resume: dict[str, Any]) -> None:
    """Continue ``training`` from a checkpoint's state (taken at the end of an epoch)."""
    training.model.load_state_dict(resume["model"])
    training.ema.module.load_state_dict(resume["ema"])
    training.ema.updates = int(resume["ema_updates"])
    training.optimizer.load_state_dict(resume["optimizer"])
    training.schedule.load_state_dict(resume["schedule"])
    training.step = int(resume["epoch"]) * training.steps_per_epoch


def _end_of_epoch(training: Training, val: DeviceData, epoch: int, loss: float, seconds: float,
                  best: dict[str, Any], out_dir: Path, spec: ArchSpec,
                  stats: tuple[list[float], list[float]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Rank 0 after an epoch: the raw and EMA weights on the held-out split, metrics.csv's row, the
    checkpoints; the row and the best so far."""
    raw = top1_accuracy(training.model, val, training.autocast)
    averaged = top1_accuracy(training.ema.module, val, training.autocast)
    selected, score = ("ema", averaged) if averaged > raw else ("raw", raw)
    improved = score > best["val_accuracy"]
    if improved:
        best = {"epoch": epoch + 1, "val_accuracy": score, "weights": selected}
    row = {"epoch": epoch + 1, "loss": round(loss, 5), "val_accuracy": round(raw, 5),
           "ema_val_accuracy": round(averaged, 5), "lr": float(f"{training.lr:.6g}"),
           "images_per_second": round(training.steps_per_epoch * training.recipe.batch_size / seconds, 1),
           "seconds": round(seconds, 2)}
    append_metrics(out_dir, row)
    save_checkpoint(out_dir, _state(training, epoch + 1, best, spec, stats, selected), best=improved)
    return row, best


def _final_accuracies(model: torch.nn.Module, ema: Any, out_dir: Path, splits: dict[str, DeviceData],
                      device: torch.device, on_cuda: bool) -> dict[str, Any]:
    """Held-out and test accuracy of the last raw and EMA weights and of best.pt's chosen weights."""
    best_state = load_checkpoint(out_dir / BEST)
    best_model = build_model(load_spec(json.loads(best_state["spec"]))).to(device)
    best_model = best_model.to(memory_format=torch.channels_last)
    best_model.load_state_dict(selected_weights(best_state))
    out: dict[str, Any] = {"best_epoch": int(best_state["best"]["epoch"]),
                           "best_weights": best_state["selected"]}
    for name, split in splits.items():
        out[f"{name}_accuracy"] = top1_accuracy(best_model, split, on_cuda)
        out[f"last_{name}_accuracy"] = top1_accuracy(model, split, on_cuda)
        out[f"last_ema_{name}_accuracy"] = top1_accuracy(ema.module, split, on_cuda)
    if "test" in splits:
        out["test_images"] = len(splits["test"])
    return out
