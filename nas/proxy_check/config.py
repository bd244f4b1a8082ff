"""What a proxy check is: the proxy as nas-search trains it, the longer reference, the models, the seeds."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from nas.errors import UserInputError
from nas.search.config import SearchConfig
from nas.training.proxy_settings import ProxySettings
from nas.proxy_check.table import KnownModel
from search_spaces.spec import ArchSpec

MIN_MODELS = 4


@dataclass
class ProxyCheckConfig:
    """A proxy check: the proxy as nas-search would train it, and what it ranks for (``search``: its proxy
    settings, targets, space and resources), and the reference to compare with."""

    search: SearchConfig
    models: int = 16
    reference_steps: int | None = None  # default: 10 x the proxy's steps
    reference_resolution: int | None = None  # default: the proxy's resolution
    repeats: int = 2
    from_run: str | None = None
    window: tuple[float, float] = (0.5, 1.5)  # sampled models' FLOPs, as fractions of the target
    references: bool = True  # add the shipped reference networks
    reference_table: str | None = None  # networks trained for real: their accuracies are the reference

    def proxy_steps(self, num_train: int) -> int:
        return self.search.proxy.total_steps(num_train)

    def reference(self, num_train: int) -> ProxySettings:
        """The reference: the proxy's settings at full width, trained longer (and optionally larger)."""
        steps = self.reference_steps or 10 * self.proxy_steps(num_train)
        proxy = self.search.proxy
        return dataclasses.replace(proxy, steps=steps, epochs=None, width=1.0,
                                   resolution=self.reference_resolution or proxy.resolution)

    def validate(self, num_train: int) -> None:
        """User errors, one line each: too few models, a reference no larger than the proxy, a bad --from."""
        if self.models < MIN_MODELS:
            raise UserInputError(f"--models {self.models}: at least {MIN_MODELS} are needed to rank anything")
        if self.repeats < 1:
            raise UserInputError(f"--repeats {self.repeats}: at least 1")
        if self.reference_table is not None:
            if self.from_run is not None:
                raise UserInputError("--reference-table and --from: give one (the table holds its own models)")
            return
        proxy_steps = self.proxy_steps(num_train)
        reference = self.reference(num_train)
        if (reference.steps <= proxy_steps and reference.resolution <= self.search.proxy.resolution
                and self.search.proxy.width >= 1):
            raise UserInputError(f"--reference-steps {reference.steps}: the reference budget must be larger than "
                                 f"the proxy's ({proxy_steps} steps at {self.search.proxy.resolution}px)")
        if self.from_run is not None and not (Path(self.from_run) / "trials.csv").is_file():
            raise UserInputError(f"--from {self.from_run}: not a nas-search run (no trials.csv there)")


@dataclass
class Candidate:
    """One architecture of the check."""

    name: str
    kind: str  # sampled | reference | from-run, or a reference table's kind
    spec: ArchSpec
    known: KnownModel | None = None  # from a reference table: what real training gave it
