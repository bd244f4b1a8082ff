"""A job (one training to measure) and its measurement: what every command that trains hands the engine and
gets back.

A job names its data by key (``"proxy"``, ``"reference"``): the arrays travel to the trials once, through
``tune.with_parameters``, not inside every trial's configuration.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from nas.training.recipe import TrainRecipe

# Bump when a change to training or evaluation changes what a trained network's accuracy means: results
# cached under another version are then not served (nas/engine/cache.py keys them by it).
TRAINER_VERSION = 2  # 2: the proxy runs nas-train's training loop (one schedule, per-epoch data order)


@dataclass(frozen=True)
class Job:
    """One training to measure: a network, its budget, the data it trains on and its seed."""

    spec: dict[str, Any]  # a B0 spec (``ArchSpec.to_dict()``); FLOPs are counted at its resolution
    budget: TrainRecipe  # the recipe at the proxy's fidelity (its seed is the job's)
    seed: int
    data: str = "proxy"  # the key of the data set among those the command gives the engine
    train_resolution: int | None = None  # the images resized to this in the trial; None: the data's own
    train_width: float = 1.0  # the network trained at this width multiplier (FLOPs: the spec's own)
    rungs: tuple[int, ...] = ()  # steps before the end at which the held-out accuracy is also reported
    # what the result cache takes for the seed: jobs equal but for ``seed`` and with the same ``cache_seed``
    # are interchangeable (nas-search trains trial n with seed + n, and caches every trial under its seed)
    cache_seed: int | str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The job as plain values, as a Tune trial's configuration carries it."""
        values = dataclasses.asdict(self)
        values["rungs"] = list(self.rungs)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Job":
        return cls(**{**values, "budget": TrainRecipe.from_dict(values["budget"]), "rungs": tuple(values["rungs"])})

    @property
    def key_seed(self) -> int | str:
        """The seed as the result cache keys it."""
        return self.seed if self.cache_seed is None else self.cache_seed


@dataclass
class Measurement:
    """What a job measured. ``final`` is False on an intermediate (rung) report: a scheduler may stop the
    trial there, and that report is then all there is."""

    status: str = "ok"  # ok | failed
    reason: str = ""
    accuracy: float = 0.0  # held-out top-1 accuracy (0 for a failed job)
    flops: int = 0  # multiply-adds counted by fvcore at the spec's resolution
    params: int = 0
    steps: int = 0  # training steps done
    seconds: float = 0.0  # the whole job: counting, data, training, evaluation
    train_seconds: float | None = None
    images_per_second: float | None = None
    final_loss: float | None = None
    train_loss: float | None = None  # the mean training loss over every step (Ru et al.'s sum, per step)
    final: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_result(cls, result: dict[str, Any] | None) -> "Measurement":
        """From a Tune result (which holds Tune's own keys too); an empty one is a failed job."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in (result or {}).items() if k in known}
        if "accuracy" not in values:
            values.setdefault("status", "failed")
        return cls(**values)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def failed(reason: str, **values: Any) -> Measurement:
    """A failed measurement with its reason."""
    return Measurement(status="failed", reason=reason, **values)

