"""The proxy's settings: how a candidate is trained to be ranked (data, resolution, fidelity, seed).

One value that nas-search, nas-proxy-check and nas-scale --grid-search share, apart from what a command ranks
for (its targets and reward) and where its trials run (its resources).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from nas.data.sources import DataRef
from nas.errors import UserInputError
from nas.training.recipe import OPTIMIZERS, PROXY_LR, TrainRecipe, proxy_recipe
from search_spaces.spec import MAX_RESOLUTION, MIN_RESOLUTION

MAX_WIDTH = 4.0
SEED_LIMIT = 2 ** 32  # seeds are 0..SEED_LIMIT-1: what numpy's and torch's generators all accept


@dataclass(frozen=True)
class ProxySettings:
    """The proxy: nas-train's recipe at a fidelity (steps or epochs, batch, resolution) on the data's training
    split, measured on its held-out split (``val_fraction`` of the training images, split with ``seed``)."""

    data: str = "synthetic"
    val_fraction: float = 0.2
    resolution: int = 32  # the training resolution (nas-search's --proxy-resolution)
    width: float = 1.0  # the trained network's channels x this (EfficientNet's rounding); FLOPs are the full one's
    steps: int | None = 300
    epochs: float | None = None  # instead of steps
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float | None = None  # peak learning rate; None: the optimizer's default for the proxy (PROXY_LR)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resolution < MIN_RESOLUTION:
            raise UserInputError(f"--proxy-resolution {self.resolution}: must be at least {MIN_RESOLUTION}")
        if self.resolution > MAX_RESOLUTION:
            raise UserInputError(f"--proxy-resolution {self.resolution}: at most {MAX_RESOLUTION}")
        if self.optimizer not in OPTIMIZERS:
            raise UserInputError(f"--optimizer {self.optimizer!r}: expected {' or '.join(OPTIMIZERS)}")
        if self.lr is not None and not 0 < self.lr < float("inf"):
            raise UserInputError(f"--lr {self.lr:g}: must be positive")
        if not 0 <= self.seed < SEED_LIMIT:
            raise UserInputError(f"--seed {self.seed}: must be between 0 and {SEED_LIMIT - 1}")
        if not 0 < self.width <= MAX_WIDTH:
            raise UserInputError(f"--proxy-width {self.width:g}: must be above 0 and at most {MAX_WIDTH:g}")
        if not 0 < self.val_fraction < 1:
            raise UserInputError(f"val_fraction {self.val_fraction:g}: must be between 0 and 1")

    def recipe(self) -> TrainRecipe:
        """How every candidate is trained: the one recipe at the proxy's fidelity."""
        return proxy_recipe(steps=self.steps, epochs=self.epochs, batch_size=self.batch_size,
                            optimizer=self.optimizer, lr=self.lr)

    def total_steps(self, num_train: int) -> int:
        """Optimizer steps of one candidate's training on ``num_train`` training images."""
        return self.recipe().total_steps(num_train)

    def describe(self) -> str:
        """``300 steps at 32px`` or ``2 epochs at 64px``, for log lines and titles."""
        fidelity = f"{self.steps} steps" if self.steps else f"{self.epochs:g} epochs"
        return f"{fidelity} at {self.resolution}px" + (f", x{self.width:g} width" if self.width != 1 else "")

    def warnings(self) -> list[str]:
        """Allowed but probably not meant: a learning rate far above the optimizer's default (the training
        diverges and every candidate fails)."""
        default_lr = PROXY_LR[self.optimizer]
        if self.lr is not None and self.lr > 10 * default_lr:
            return [f"warning: --lr {self.lr:g} is {self.lr / default_lr:.0f}x the default of {self.optimizer} "
                    f"({default_lr:g}): the proxy training is likely to diverge and candidates to fail"]
        return []

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def data_ref(self) -> DataRef:
        """The proxy's data: its images at the proxy's resolution, the held-out share split with its seed."""
        return DataRef(self.data, self.resolution, self.val_fraction, self.seed)

    @classmethod
    def from_fields(cls, values: dict[str, Any]) -> "ProxySettings":
        """From a command's flat fields, as search.json holds them (``proxy_resolution`` and ``proxy_width`` are
        the proxy's resolution and width; ``resolution``, where FLOPs are counted, and the other fields are not
        the proxy's), with the defaults for what is missing."""
        names = {f.name for f in fields(cls)} - {"resolution", "width"}
        chosen = {key: value for key, value in values.items() if key in names}
        for flat, own in (("proxy_resolution", "resolution"), ("proxy_width", "width")):
            if flat in values:
                chosen[own] = values[flat]
        return cls(**chosen)
