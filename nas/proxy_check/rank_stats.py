"""Rank agreement between two measurements of the same models, in numpy (no scipy).

Kendall's tau-b and Spearman's rho both handle ties; a bootstrap over models gives an interval; top-k
overlap says whether the best models stay the best.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def _pair(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"need two 1-d sequences of the same length, got {x.shape} and {y.shape}")
    return x, y


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties in x) (n0 - ties in y)) over all pairs.

    NaN when fewer than two values, or when either side is constant (no order to agree with).
    """
    x, y = _pair(x, y)
    if len(x) < 2:
        return float("nan")
    upper = np.triu_indices(len(x), k=1)
    dx = np.sign(x[:, None] - x[None, :])[upper]
    dy = np.sign(y[:, None] - y[None, :])[upper]
    pairs_x, pairs_y = np.count_nonzero(dx), np.count_nonzero(dy)  # pairs not tied in x, in y
    if pairs_x == 0 or pairs_y == 0:
        return float("nan")
    return float(np.sum(dx * dy) / np.sqrt(float(pairs_x) * float(pairs_y)))


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, tied values sharing the average of the ranks they span."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0  # mean of ranks start+1 .. end
            start = end
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: the Pearson correlation of the average ranks (NaN when either side is constant)."""
    x, y = _pair(x, y)
    if len(x) < 2:
        return float("nan")
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt(np.sum(rx * rx) * np.sum(ry * ry))
    return float(np.sum(rx * ry) / denominator) if denominator > 0 else float("nan")


def top_k_overlap(x: Sequence[float], y: Sequence[float], k: int) -> float:
    """The fraction of the k best by ``x`` that are also among the k best by ``y`` (higher is better)."""
    x, y = _pair(x, y)
    k = max(1, min(int(k), len(x)))
    best_x = set(np.argsort(-x, kind="mergesort")[:k].tolist())
    best_y = set(np.argsort(-y, kind="mergesort")[:k].tolist())
    return len(best_x & best_y) / k


def bootstrap_interval(statistic: Callable[[np.ndarray, np.ndarray], float], x: Sequence[float],
                       y: Sequence[float], level: float = 0.9, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval of ``statistic(x, y)``, resampling models with replacement.

    Resamples on which the statistic is undefined (NaN, e.g. all the same model drawn) are skipped.
    """
    x, y = _pair(x, y)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        index = rng.integers(0, len(x), len(x))
        value = statistic(x[index], y[index])
        if np.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
