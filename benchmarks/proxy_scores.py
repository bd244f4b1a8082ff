"""Shared by search_quality.py and winner_recheck.py: networks trained on a search's proxy under given seeds
and scored with its reward, as the engine trains and the driver scores a candidate."""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd

from nas.engine.job import Job
from nas.engine.measure import measure, trial_device
from nas.search.config import SearchConfig
from search_spaces.spec import ArchSpec


def proxy_rewards(networks: dict[str, ArchSpec], data: Any, config: SearchConfig, seeds: list[int],
                  log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """One row per network and seed: accuracy, FLOPs, reward (0 for a failed training), seconds."""
    trial_device(config.resources.cpus_per_trial or 2, 0)
    rows = []
    for name, spec in networks.items():
        spec = spec.replace(num_classes=data.num_classes)
        for seed in seeds:
            measured = measure(Job(spec.to_dict(), config.proxy.recipe(), seed=seed), data)
            reward = config.objective.score(measured.accuracy, measured.flops) if measured.ok else 0.0
            rows.append({"network": name, "seed": seed, "accuracy": measured.accuracy, "flops": measured.flops,
                         "reward": reward, "seconds": round(measured.seconds, 1)})
            if log is not None:
                log(f"{name:>16} seed {seed}: accuracy {measured.accuracy:.3f}, {measured.flops / 1e6:.1f}M "
                    f"FLOPs, reward {reward:.4f} ({measured.seconds:.0f}s)")
    return pd.DataFrame(rows)
