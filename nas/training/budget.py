"""How long and how to train a network: the optimizer and its default learning rate, steps or epochs, and
the rungs at which a multi-fidelity trial reports."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

# the optimizers of the proxy training and their default peak learning rates. AdamW is the default: at the
# default budget it tells a network from itself twice as reliably as SGD did (benchmarks/proxy_noise.py;
# README "Is my proxy good enough?")
DEFAULT_LR = {"adamw": 0.003, "sgd": 0.1}
OPTIMIZERS = tuple(DEFAULT_LR)


@dataclass
class TrainBudget:
    """How long and how to train a candidate; ``steps`` overrides ``epochs`` when set."""

    epochs: float = 3.0
    steps: int | None = None
    batch_size: int = 64
    optimizer: str = "adamw"  # "adamw" or "sgd" (Nesterov momentum); see DEFAULT_LR
    lr: float | None = None  # peak learning rate; None: the optimizer's default
    momentum: float = 0.9
    weight_decay: float = 5e-5
    label_smoothing: float = 0.1
    warmup_fraction: float = 0.1
    eval_batch_size: int = 512

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps: {self.steps} must be at least 1")
        if self.steps is None and not self.epochs > 0:
            raise ValueError(f"epochs: {self.epochs} must be positive")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
        if self.lr is None:
            self.lr = DEFAULT_LR[self.optimizer]
        if self.batch_size < 1 or self.lr <= 0:
            raise ValueError("batch_size and lr must be positive")

    def total_steps(self, num_images: int) -> int:
        if self.steps is not None:
            return self.steps
        return max(1, math.ceil(self.epochs * num_images / self.batch_size))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rung_steps(total: int, grace_fraction: float = 0.25, reduction_factor: int = 2) -> list[int]:
    """The steps before ``total`` at which a multi-fidelity trial reports: ``total * grace_fraction`` times
    powers of ``reduction_factor`` (ASHA's milestones when its grace period is that first rung)."""
    grace = max(1, int(total * grace_fraction))
    rungs = []
    while grace < total:
        rungs.append(grace)
        grace *= reduction_factor
    return rungs
