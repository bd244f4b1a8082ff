"""How a latency is timed, whatever runs the network: warm-up, then blocked runs of ``torch.utils.benchmark``
(median and interquartile range)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Latency:
    """A measured latency in milliseconds: the median of blocked runs and their interquartile range."""

    median_ms: float
    iqr_ms: float

    def to_dict(self) -> dict[str, float]:
        return {"median_ms": round(self.median_ms, 5), "iqr_ms": round(self.iqr_ms, 5)}


def blocked_latency(run: Callable[[], Any], threads: int = 1, min_run_time: float = 0.2,
                    warmup: int = 3) -> Latency:
    """Latency of ``run()``: ``warmup`` calls, then blocks of calls for at least ``min_run_time`` seconds."""
    from torch.utils import benchmark

    for _ in range(warmup):
        run()
    timer = benchmark.Timer(stmt="run()", globals={"run": run}, num_threads=threads)
    result = timer.blocked_autorange(min_run_time=min_run_time)
    return Latency(result.median * 1e3, result.iqr * 1e3)
