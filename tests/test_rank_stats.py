"""Rank statistics against hand-computed values, ties included."""
import math

import numpy as np
import pytest

from nas.proxy_check.rank_stats import average_ranks, bootstrap_interval, kendall_tau_b, spearman_rho, top_k_overlap


def test_perfect_and_reversed_rankings():
    x = [0.1, 0.5, 0.3, 0.9, 0.7]
    assert kendall_tau_b(x, x) == pytest.approx(1.0) and spearman_rho(x, x) == pytest.approx(1.0)
    reversed_ = [-v for v in x]
    assert kendall_tau_b(x, reversed_) == pytest.approx(-1.0) and spearman_rho(x, reversed_) == pytest.approx(-1.0)
    assert kendall_tau_b(x, [2 * v + 7 for v in x]) == pytest.approx(1.0)  # only the order counts


def test_hand_computed_values_without_ties():
    x, y = [1, 2, 3, 4], [2, 1, 4, 3]
    # pairs: (0,1) discordant, (2,3) discordant, the other four concordant: (4 - 2) / 6
    assert kendall_tau_b(x, y) == pytest.approx(1 / 3)
    # 1 - 6 * sum(d^2) / (n (n^2 - 1)) with d = (-1, 1, -1, 1): 1 - 24 / 60
    assert spearman_rho(x, y) == pytest.approx(0.6)


def test_hand_computed_values_with_ties():
    x, y = [1, 2, 2, 3], [1, 3, 2, 4]
    # 5 concordant, 0 discordant, 1 pair tied in x only: 5 / sqrt(5 * 6)
    assert kendall_tau_b(x, y) == pytest.approx(5 / math.sqrt(30))
    # ranks x (1, 2.5, 2.5, 4), y (1, 3, 2, 4): 4.5 / sqrt(4.5 * 5)
    assert spearman_rho(x, y) == pytest.approx(4.5 / math.sqrt(22.5))
    assert list(average_ranks([10, 20, 20, 30, 20])) == [1, 3, 3, 5, 3]


def test_undefined_when_one_side_is_constant():
    assert math.isnan(kendall_tau_b([1, 2, 3], [5, 5, 5])) and math.isnan(spearman_rho([1, 2, 3], [5, 5, 5]))
    assert math.isnan(kendall_tau_b([1], [2]))
    with pytest.raises(ValueError, match=r"same length, got \(2,\) and \(3,\)"):
        kendall_tau_b([1, 2], [1, 2, 3])


def test_top_k_overlap():
    assert top_k_overlap([4, 3, 2, 1], [4, 1, 3, 2], 2) == 0.5  # {0, 1} against {0, 2}
    assert top_k_overlap([4, 3, 2, 1], [4, 3, 2, 1], 3) == 1.0
    assert top_k_overlap([4, 3, 2, 1], [1, 2, 3, 4], 1) == 0.0


def test_bootstrap_interval_brackets_the_estimate():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = x + rng.normal(scale=0.7, size=30)
    low, high = bootstrap_interval(kendall_tau_b, x, y, resamples=500)
    assert -1 <= low < kendall_tau_b(x, y) < high <= 1 and high - low < 0.6
    assert bootstrap_interval(kendall_tau_b, x, x, resamples=200) == (pytest.approx(1.0), pytest.approx(1.0))
