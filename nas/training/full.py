"""nas-train's training loop for one worker: plain PyTorch, DDP when a process group is up (Ray Train sets it up).

Every worker draws the same permutation of the training images each epoch and takes its share of each global
batch (``rank::world_size``); augmentation runs on the device. Rank 0 evaluates the raw and the EMA weights on
the held-out split after every epoch, writes ``metrics.csv`` and the checkpoints, and at the end measures the
test split (when there is one) with the best weights. The random streams are reseeded from (seed, epoch, rank)
at every epoch, so a resumed run continues exactly as the uninterrupted one would have.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from nas.data.datasets import ProxyData
from nas.files import append_csv_rows, atomic_write
from nas.network.builder import build_model
from nas.training.augment import random_resized_crop_flip
from nas.training.checkpoints import BEST, load_checkpoint, save_checkpoint
from nas.training.proxy import DeviceData, init_for_short_training, top1_accuracy
from nas.training.recipe import TrainRecipe, make_ema, make_optimizer, make_schedule
from search_spaces.spec import ArchSpec, architecture_hash, load_spec

METRICS = "metrics.csv"
METRIC_COLUMNS = ["epoch", "loss", "val_accuracy", "ema_val_accuracy", "lr", "images_per_second", "seconds"]
EVAL_BATCH = 256
STATS_IMAGES = 4096  # images the normalisation's mean and std are taken from


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def channel_stats(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation (0..1 scale) of uint8 NHWC images, from a strided sample."""
    step = max(1, len(x) // STATS_IMAGES)
    sample = x[::step].reshape(-1, 3).astype(np.float32) / 255
    return sample.mean(0).tolist(), (sample.std(0) + 1e-3).tolist()


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of one epoch on one worker (its data order is drawn with rank 0's)."""
    return (seed * 100_003 + epoch) * 1_024 + rank


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


def _state(model: torch.nn.Module, ema: Any, optimizer: torch.optim.Optimizer, schedule: Any, epoch: int,
           best: dict[str, Any], spec: ArchSpec, recipe: TrainRecipe, stats: tuple[list[float], list[float]],
           selected: str) -> dict[str, Any]:
    return {"spec": spec.to_json(), "spec_name": spec.name, "spec_hash": architecture_hash(spec),
            "num_classes": spec.num_classes, "resolution": spec.resolution,
            "model": model.state_dict(), "ema": ema.module.state_dict(), "ema_updates": int(ema.n_averaged),
            "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "epoch": epoch,
            "best": dict(best), "selected": selected, "recipe": recipe.to_dict(),
            "mean": stats[0], "std": stats[1]}


def selected_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a checkpoint chose by held-out accuracy: the EMA's or the raw model's."""
    return state["ema"] if state.get("selected") == "ema" else state["model"]


def train_network(spec: ArchSpec, data: ProxyData, recipe: TrainRecipe, out_dir: str | Path, *,
                  test: tuple[np.ndarray, np.ndarray] | None = None, device: str | torch.device | None = None,
                  rank: int = 0, world_size: int = 1, resume: dict[str, Any] | None = None,
                  on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train ``spec`` (its classifier as wide as ``data``'s classes) with ``recipe``; rank 0 writes ``out_dir``.

    ``resume``: a checkpoint's state to continue from. ``on_epoch(row)`` is called on every rank after each
    epoch (rank 0's row holds the metrics, the others' are empty). Returns, on rank 0, the last epoch's and
    the best weights' held-out and test accuracy; ``{}`` on the other ranks. Raises TrainingDiverged when the
    loss stops being finite.
    """
    out_dir = Path(out_dir)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    on_cuda = device.type == "cuda"
    spec = spec.replace(num_classes=data.num_classes)
    torch.manual_seed(recipe.seed)
    model = build_model(spec)
    init_for_short_training(model)  # residual layers start as the identity; small initial logits
    model = model.to(device).to(memory_format=torch.channels_last)
    ema = make_ema(model, recipe.ema_decay)
    optimizer = make_optimizer(model, recipe)
    steps = len(data.y_train) // recipe.batch_size
    if steps < 1:
        raise ValueError(f"batch size {recipe.batch_size} is more than the {len(data.y_train)} training images")
    if recipe.batch_size % world_size:
        raise ValueError(f"batch size {recipe.batch_size} does not split over {world_size} workers")
    schedule = make_schedule(optimizer, recipe, steps)
    stats = channel_stats(data.x_train)
    best: dict[str, Any] = {"epoch": 0, "val_accuracy": -1.0, "weights": "raw"}
    start_epoch = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        ema.module.load_state_dict(resume["ema"])
        ema.n_averaged.fill_(int(resume["ema_updates"]))
        optimizer.load_state_dict(resume["optimizer"])
        schedule.load_state_dict(resume["schedule"])
        start_epoch, best, stats = int(resume["epoch"]), dict(resume["best"]), (resume["mean"], resume["std"])
    if rank == 0:
        keep_epochs(out_dir, start_epoch)
    trained = model
    if _distributed(world_size):
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None)

    mean = torch.tensor(stats[0], device=device).view(1, 3, 1, 1)
    std = torch.tensor(stats[1], device=device).view(1, 3, 1, 1)
    train = DeviceData(data.x_train, data.y_train, device, mean, std, 0)
    val = DeviceData(data.x_val, data.y_val, device, mean, std, 0) if rank == 0 else None
    scale = (recipe.crop_scale, 1.0)
    local = recipe.batch_size // world_size

    for epoch in range(start_epoch, recipe.epochs):
        seed = epoch_seed(recipe.seed, epoch, rank)
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(epoch_seed(recipe.seed, epoch)))
        augment = torch.Generator(device=device).manual_seed(seed)
        torch.manual_seed(seed)  # drop-connect and dropout
        model.train()
        if on_cuda:
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for step in range(steps):
            index = order[step * recipe.batch_size:(step + 1) * recipe.batch_size][rank::world_size][:local]
            index = index.to(device)
            x = random_resized_crop_flip(train._to_input(train.x[index], torch.float32), scale, augment)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_cuda):
                loss = F.cross_entropy(trained(x), train.y[index], label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            ema.update_parameters(model)
            loss_sum += loss.detach().float()
            if (step % 25 == 0 or step == steps - 1) and not math.isfinite(float(loss.detach())):
                raise TrainingDiverged(f"the training loss became {float(loss.detach())} at epoch {epoch + 1}, step "
                                       f"{step + 1}; lower --lr")
        if on_cuda:
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
        row: dict[str, Any] = {}
        if rank == 0:
            raw = top1_accuracy(model, val, EVAL_BATCH, on_cuda)
            averaged = top1_accuracy(ema.module, val, EVAL_BATCH, on_cuda)
            selected, score = ("ema", averaged) if averaged > raw else ("raw", raw)
            improved = score > best["val_accuracy"]
            if improved:
                best = {"epoch": epoch + 1, "val_accuracy": score, "weights": selected}
            row = {"epoch": epoch + 1, "loss": round(float(loss_sum) / steps, 5), "val_accuracy": round(raw, 5),
                   "ema_val_accuracy": round(averaged, 5), "lr": float(f"{schedule.get_last_lr()[0]:.6g}"),
                   "images_per_second": round(steps * recipe.batch_size / seconds, 1),
                   "seconds": round(seconds, 2)}
            append_metrics(out_dir, row)
            save_checkpoint(out_dir, _state(model, ema, optimizer, schedule, epoch + 1, best, spec, recipe, stats,
                                            selected), best=improved)
        if on_epoch is not None:
            on_epoch(row)
    if rank != 0:
        return {}
    splits = {"val": val}
    if test is not None:
        splits["test"] = DeviceData(test[0], test[1], device, mean, std, 0)
    return _final_accuracies(model, ema, out_dir, splits, device, on_cuda)


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
        out[f"{name}_accuracy"] = top1_accuracy(best_model, split, EVAL_BATCH, on_cuda)
        out[f"last_{name}_accuracy"] = top1_accuracy(model, split, EVAL_BATCH, on_cuda)
        out[f"last_ema_{name}_accuracy"] = top1_accuracy(ema.module, split, EVAL_BATCH, on_cuda)
    if "test" in splits:
        out["test_images"] = len(splits["test"])
    return out
