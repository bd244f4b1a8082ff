"""The rungs at which a multi-fidelity trial reports (how a run trains: :mod:`nas.training.recipe`)."""
from __future__ import annotations


def rung_steps(total: int, grace_fraction: float = 0.25, reduction_factor: int = 2) -> list[int]:
    """The steps before ``total`` at which a multi-fidelity trial reports: ``total * grace_fraction`` times
    powers of ``reduction_factor`` (ASHA's milestones when its grace period is that first rung)."""
    grace = max(1, int(total * grace_fraction))
    rungs = []
    while grace < total:
        rungs.append(grace)
        grace *= reduction_factor
    return rungs
