"""A search's choices as the networks it trains: the run's space decodes each one's shape (blocks, relative
widths, strides, input size) and, in a space that fits widths, one factor scales its widths to the budget."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from nas.network.scaling import analytic_flops, fit_width, widened
from search_spaces.mnasnet import MnasNetSpace
from search_spaces.spec import ArchSpec


@dataclass(frozen=True)
class CandidateDecoder:
    """``decoder(choices, name)`` -> the network of ``choices`` in a run: at the run's ``resolution`` (or the one
    the choices pick), with ``num_classes``, its widths fitted to ``fit_flops`` (None: as decoded)."""

    space: MnasNetSpace
    resolution: int
    num_classes: int
    fit_flops: float | None = None

    def __call__(self, choices: Sequence[int], name: str = "candidate") -> ArchSpec:
        shape = self.shape(choices, name)
        if self.fit_flops is None:
            return shape
        fitted, width = fit_width(shape, self.fit_flops, self.bounds)
        return fitted.replace(provenance={**shape.provenance, "width_fit": width})

    @property
    def bounds(self) -> tuple[float, float]:
        """The smallest and largest factor of a fit (the space's ``fit_bounds``)."""
        low, high = self.space.config.fit_bounds
        return low, high

    def shape(self, choices: Sequence[int], name: str = "candidate") -> ArchSpec:
        """The network as the space decodes it, before any fit."""
        return self.space.decode(list(choices), resolution=self.resolution, num_classes=self.num_classes,
                                 name=name)

    def flops_reach(self, choices: Sequence[int]) -> tuple[int, int]:
        """The fewest and the most FLOPs ``choices`` can have: its fit's bounds (both its own FLOPs unfitted),
        in two counts where a fit takes about eight."""
        shape = self.shape(choices)
        if self.fit_flops is None:
            flops = analytic_flops(shape)
            return flops, flops
        return analytic_flops(widened(shape, self.bounds[0])), analytic_flops(widened(shape, self.bounds[1]))

    def fits_in(self, choices: Sequence[int], low: float, high: float) -> bool:
        """Whether ``choices``, fitted, land within ``low``..``high`` FLOPs: a fitted network lands at the budget
        unless a bound of its factor stops it short (the window is then what screens it)."""
        fewest, most = self.flops_reach(choices)
        if self.fit_flops is None or fewest > self.fit_flops:  # as decoded, or too large even at the narrowest
            return low <= fewest <= high
        if most <= self.fit_flops:  # too small even at the widest
            return low <= most <= high
        return low <= self.fit_flops <= high  # it lands just under the target
