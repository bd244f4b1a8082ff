"""The full training recipe of nas-train (not the proxy's): optimizer, learning-rate schedule, regularisation.

SGD with Nesterov momentum, AdamW, or RMSprop as in the EfficientNet paper (decay 0.9, momentum 0.9, eps 1e-3);
a linear warm-up then cosine decay to zero, stepped every batch; label smoothing; weight decay on the conv and
linear weights only (not BatchNorm, not biases); the spec's own drop-connect and dropout; an exponential
moving average of the weights with TensorFlow's warm-up, ``min(decay, (1 + n) / (10 + n))`` after n updates.
Learning rates are given per 256 images and scaled linearly with the global batch (Goyal et al. 2017).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

# peak learning rate per 256 images and weight decay of each optimizer. AdamW is the default: on CIFAR-10 at
# 32 px (benchmarks/train_recipe.py: EfficientNet-B0, 8 epochs, batch 128) it reached 0.500 held-out accuracy
# against SGD's 0.459 at its best learning rate and RMSprop's 0.230 at the EfficientNet paper's (README "Train
# the network you found")
LR_PER_256 = {"sgd": 0.1, "adamw": 0.008, "rmsprop": 0.016}
WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 0.05, "rmsprop": 1e-5}
OPTIMIZERS = tuple(LR_PER_256)


@dataclass
class TrainRecipe:
    """How nas-train trains a network; None fields take the optimizer's defaults (LR_PER_256, WEIGHT_DECAY)."""

    epochs: int = 30
    batch_size: int = 128  # global: split over the workers
    optimizer: str = "adamw"
    lr: float | None = None  # peak learning rate for the global batch
    weight_decay: float | None = None
    momentum: float = 0.9
    warmup_epochs: float = 2.0
    label_smoothing: float = 0.1
    ema_decay: float = 0.9998
    crop_scale: float = 0.35  # random-resized-crop: the smallest crop, as a fraction of the image's area
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch size must be at least 1")
        if self.lr is None:
            self.lr = LR_PER_256[self.optimizer] * self.batch_size / 256
        if self.weight_decay is None:
            self.weight_decay = WEIGHT_DECAY[self.optimizer]
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError("the learning rate must be positive and the weight decay not negative")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"EMA decay {self.ema_decay}: must be in [0, 1)")
        if not 0 < self.crop_scale <= 1:
            raise ValueError(f"crop scale {self.crop_scale}: must be in (0, 1]")
        if not 0 <= self.label_smoothing < 1 or self.warmup_epochs < 0:
            raise ValueError("label smoothing must be in [0, 1) and warm-up epochs not negative")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainRecipe":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: conv and linear weights with ``weight_decay``; BatchNorm parameters and biases without."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, recipe: TrainRecipe) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``model``."""
    groups = param_groups(model, recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    if recipe.optimizer == "rmsprop":  # TF's RMSprop as EfficientNet used it (eps inside the root in TF)
        return torch.optim.RMSprop(groups, lr=recipe.lr, alpha=0.9, eps=1e-3, momentum=recipe.momentum)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=True)


def make_schedule(optimizer: torch.optim.Optimizer, recipe: TrainRecipe,
                  steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_epochs``, then cosine decay to zero at the last step; step it per batch."""
    total = max(1, recipe.epochs * steps_per_epoch)
    warmup = min(total - 1, int(round(recipe.warmup_epochs * steps_per_epoch)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def ema_weight(decay: float, updates: int) -> float:
    """The weight of the new value in the EMA after ``updates`` earlier updates (TF's warm-up)."""
    return 1.0 - min(decay, (1.0 + updates) / (10.0 + updates))


class EmaUpdate:
    """``multi_avg_fn`` of ``torch.optim.swa_utils.AveragedModel``: an EMA with TF's warm-up, one fused lerp per
    group of tensors (integer buffers, BatchNorm's batch counters, are copied). Picklable."""

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, averaged: list[torch.Tensor], current: list[torch.Tensor],
                 num_averaged: torch.Tensor) -> None:
        if averaged and averaged[0].is_floating_point():
            torch._foreach_lerp_(averaged, current, ema_weight(self.decay, int(num_averaged)))
        else:
            torch._foreach_copy_(averaged, current)


def make_ema(model: torch.nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``model``'s weights and BatchNorm statistics."""
    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=EmaUpdate(decay), use_buffers=True)
