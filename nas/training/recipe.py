"""The one training recipe: what nas-train trains with, and what the proxy trains with at reduced fidelity.

SGD with Nesterov momentum, AdamW, or RMSprop as in the EfficientNet paper (decay 0.9, momentum 0.9, eps 1e-3);
a linear warm-up then cosine decay to zero at the run's own last step, stepped every batch; label smoothing;
weight decay on the conv and linear weights only (not BatchNorm, not biases); the spec's own drop-connect and
dropout; an exponential moving average of the weights with TensorFlow's warm-up, ``min(decay, (1 + n) /
(10 + n))`` after n updates (``ema_decay`` 0: none). Learning rates are given per 256 images and scaled
linearly with the global batch (Goyal et al. 2017). A run lasts ``epochs``, or ``steps`` when set (a proxy).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: the command lines' --help and config stay light
    import torch

# peak learning rate per 256 images and weight decay of each optimizer. AdamW is the default: on CIFAR-10 at
# 32 px (benchmarks/train_recipe.py: EfficientNet-B0, 8 epochs, batch 128) it reached 0.500 held-out accuracy
# against SGD's 0.459 at its best learning rate and RMSprop's 0.230 at the EfficientNet paper's
# (docs/training.md)
LR_PER_256 = {"sgd": 0.1, "adamw": 0.008, "rmsprop": 0.016}
WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 0.05, "rmsprop": 1e-5}
OPTIMIZERS = tuple(LR_PER_256)
AUGMENTATIONS = ("resized-crop", "pad-crop")  # random-resized-crop + flip; reflect-pad by 1/8, crop + flip

# the search's proxy: the same recipe with the values measured for 300-step runs (benchmarks/proxy_noise.py;
# docs/proxy-check.md): a peak learning rate per batch of 64, light decay, a warm-up of a tenth
# of the run, pad-and-crop, no weight average. AdamW at the default budget tells a network from itself twice as
# reliably as SGD did.
PROXY_LR = {"adamw": 0.003, "sgd": 0.1, "rmsprop": 0.006}
PROXY_WEIGHT_DECAY = 5e-5


@dataclass(frozen=True)
class TrainRecipe:
    """How a network is trained; None fields take the optimizer's defaults (LR_PER_256, WEIGHT_DECAY)."""

    epochs: float = 30
    batch_size: int = 128  # global: split over the workers
    optimizer: str = "adamw"
    lr: float | None = None  # peak learning rate for the global batch
    weight_decay: float | None = None
    momentum: float = 0.9
    warmup_epochs: float = 2.0
    label_smoothing: float = 0.1
    ema_decay: float = 0.9998  # 0: no moving average
    crop_scale: float = 0.35  # random-resized-crop: the smallest crop, as a fraction of the image's area
    seed: int = 0
    steps: int | None = None  # the run's length in steps instead of epochs (a proxy)
    warmup_fraction: float | None = None  # the warm-up as a share of the run's steps instead of warmup_epochs
    augment: str = "resized-crop"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment {self.augment!r}: expected one of {', '.join(AUGMENTATIONS)}")
        if not self.epochs > 0 or self.batch_size < 1 or (self.steps is not None and self.steps < 1):
            raise ValueError("epochs, steps and batch size must be positive")
        if self.lr is None:
            object.__setattr__(self, "lr", LR_PER_256[self.optimizer] * self.batch_size / 256)
        if self.weight_decay is None:
            object.__setattr__(self, "weight_decay", WEIGHT_DECAY[self.optimizer])
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError("the learning rate must be positive and the weight decay not negative")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"EMA decay {self.ema_decay}: must be in [0, 1)")
        if not 0 < self.crop_scale <= 1:
            raise ValueError(f"crop scale {self.crop_scale}: must be in (0, 1]")
        if not 0 <= self.label_smoothing < 1 or self.warmup_epochs < 0:
            raise ValueError("label smoothing must be in [0, 1) and warm-up epochs not negative")
        if self.warmup_fraction is not None and not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warm-up fraction {self.warmup_fraction}: must be in [0, 1)")

    def steps_per_epoch(self, num_images: int) -> int:
        """Full batches in one pass over ``num_images`` (at least one)."""
        return max(1, num_images // self.batch_size)

    def total_steps(self, num_images: int) -> int:
        """The run's length: ``steps``, or ``epochs`` passes over ``num_images``."""
        if self.steps is not None:
            return self.steps
        return max(1, round(self.epochs * self.steps_per_epoch(num_images)))

    def warmup_steps(self, num_images: int) -> int:
        """Steps of linear warm-up: ``warmup_fraction`` of the run, or ``warmup_epochs`` passes."""
        total = self.total_steps(num_images)
        if self.warmup_fraction is not None:
            return max(1, int(total * self.warmup_fraction))
        return min(total - 1, int(round(self.warmup_epochs * self.steps_per_epoch(num_images))))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainRecipe":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def proxy_recipe(steps: int | None = None, epochs: float | None = None, batch_size: int = 64,
                 optimizer: str = "adamw", lr: float | None = None, seed: int = 0) -> TrainRecipe:
    """The search's proxy: ``steps``, else ``epochs``, else 300 steps of the recipe with the proxy's measured
    values (PROXY_LR)."""
    if not steps and not epochs:
        steps = 300
    return TrainRecipe(epochs=epochs or 3.0, steps=steps or None, batch_size=batch_size,
                       optimizer=optimizer, lr=lr or PROXY_LR[optimizer], weight_decay=PROXY_WEIGHT_DECAY,
                       warmup_fraction=0.1, ema_decay=0.0, augment="pad-crop", seed=seed)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: conv and linear weights with ``weight_decay``; BatchNorm parameters and biases without."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, recipe: TrainRecipe) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``model``."""
    import torch

    groups = param_groups(model, recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    if recipe.optimizer == "rmsprop":  # TF's RMSprop as EfficientNet used it (eps inside the root in TF)
        return torch.optim.RMSprop(groups, lr=recipe.lr, alpha=0.9, eps=1e-3, momentum=recipe.momentum)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=True)


def make_schedule(optimizer: torch.optim.Optimizer, total_steps: int,
                  warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then cosine decay to zero at ``total_steps``; step it per batch."""
    import torch

    total, warmup = max(1, total_steps), max(0, min(warmup_steps, total_steps - 1))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def ema_weight(decay: float, updates: int) -> float:
    """The weight of the new value in the EMA after ``updates`` earlier updates (TF's warm-up)."""
    return 1.0 - min(decay, (1.0 + updates) / (10.0 + updates))


class WeightAverage:
    """An exponential moving average of a model's weights and buffers, with TF's warm-up: one fused lerp per
    step over the floating-point tensors (integer buffers, BatchNorm's batch counters, are copied).

    The update count lives on the host (``updates``), so a step never waits for the device to read it: the
    training loop looks at the loss only every few steps for the same reason (torch's AveragedModel keeps its
    count in a device tensor and reads it at every update)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        import copy

        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    def update(self, model: torch.nn.Module) -> None:
        """Move the average towards ``model``'s tensors (the first update copies them)."""
        import torch

        with torch.no_grad():
            pairs = list(zip([*self.module.parameters(), *self.module.buffers()],
                             [*model.parameters(), *model.buffers()]))
            floats = [(a, c.detach()) for a, c in pairs if a.is_floating_point()]
            others = [(a, c.detach()) for a, c in pairs if not a.is_floating_point()]
            if floats and self.updates > 0:
                torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats],
                                     ema_weight(self.decay, self.updates))
            elif floats:
                torch._foreach_copy_([a for a, _ in floats], [c for _, c in floats])
            if others:
                torch._foreach_copy_([a for a, _ in others], [c for _, c in others])
        self.updates += 1


def make_ema(model: torch.nn.Module, decay: float) -> WeightAverage:
    """An exponential moving average of ``model``'s weights and BatchNorm statistics."""
    return WeightAverage(model, decay)
