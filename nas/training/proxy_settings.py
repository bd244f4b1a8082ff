"""The proxy's settings: how a candidate is trained to be ranked (data, resolution, fidelity, seed).

One value that nas-search, nas-proxy-check and nas-scale --grid-search share, apart from what a command ranks
for (its targets and reward) and where its trials run (its resources).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from nas.data.sources import DataRef
from nas.errors import SettingError
from nas.training.recipe import OPTIMIZERS, PROXY_LR, TrainRecipe, proxy_recipe
from search_spaces.spec import MAX_RESOLUTION, MIN_RESOLUTION

MAX_WIDTH = 4.0
# the proxy's own field -> its name among a command's flat fields (search.json, the flags)
FLAT_NAMES = {"resolution": "proxy_resolution", "width": "proxy_width"}
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
        if not MIN_RESOLUTION <= self.resolution <= MAX_RESOLUTION:
            raise SettingError("resolution", f"must be {MIN_RESOLUTION} to {MAX_RESOLUTION}", self.resolution)
        if self.optimizer not in OPTIMIZERS:
            raise SettingError("optimizer", f"expected {' or '.join(OPTIMIZERS)}", repr(self.optimizer))
        if self.lr is not None and not 0 < self.lr < float("inf"):
            raise SettingError("lr", "must be positive", self.lr)
        if not 0 <= self.seed < SEED_LIMIT:
            raise SettingError("seed", f"must be between 0 and {SEED_LIMIT - 1}", self.seed)
        if not 0 < self.width <= MAX_WIDTH:
            raise SettingError("width", f"must be above 0 and at most {MAX_WIDTH:g}", self.width)
        if not 0 < self.val_fraction < 1:
            raise SettingError("val_fraction", "must be between 0 and 1", self.val_fraction)

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
        the proxy's), with the defaults for what is missing. Errors name the flat fields."""
        names = {f.name for f in fields(cls)} - set(FLAT_NAMES)
        chosen = {key: value for key, value in values.items() if key in names}
        for own, flat in FLAT_NAMES.items():
            if flat in values:
                chosen[own] = values[flat]
        try:
            return cls(**chosen)
        except SettingError as exc:
            raise exc.renamed(FLAT_NAMES) from None
