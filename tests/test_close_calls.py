"""The end-of-search line on candidates the proxy's held-out split cannot tell from the winner."""
import math

import pandas as pd
import pytest

from nas.search.close_calls import close_call_line, close_to_best, standard_error


def _trials(rows):
    return pd.DataFrame([{"trial": t, "choices": [t, 0], "accuracy": acc, "reward": acc * factor, "status": status}
                         for t, acc, factor, status in rows])


def test_the_standard_error_is_the_binomial_one():
    assert standard_error(0.5, 100) == pytest.approx(0.05)
    assert standard_error(0.58, 341) == pytest.approx(math.sqrt(0.58 * 0.42 / 341))
    assert standard_error(1.0, 50) == 0.0


def test_only_trained_candidates_within_one_error_of_the_best_are_close():
    trials = _trials([(0, 0.60, 1.0, "ok"), (1, 0.58, 1.0, "ok"), (2, 0.50, 1.0, "ok"),
                      (3, 0.61, 1.0, "stopped"), (4, 0.0, 1.0, "failed")])
    close, error = close_to_best(trials, 341)  # error 2.65 points: 0.58 is within, 0.50 is not
    assert error == pytest.approx(standard_error(0.60, 341))
    assert list(close["trial"]) == [0, 1]
    close, _ = close_to_best(trials, 10_000)  # error 0.49 points: nothing else is within
    assert list(close["trial"]) == [0]


def test_the_error_is_carried_to_reward_by_the_winners_flops_factor():
    # the winner's reward is 0.9 x its accuracy: one accuracy error (5 points at 100 images) is 4.5 of reward
    trials = _trials([(0, 0.50, 0.9, "ok"), (1, 0.455, 0.91, "ok"), (2, 0.449, 0.9, "ok")])
    close, _ = close_to_best(trials, 100)
    assert list(close["trial"]) == [0, 1]  # 0.414 >= 0.45 - 0.045; 0.404 is just below


def test_the_line_names_the_trials_and_start_points_or_is_absent():
    trials = _trials([(0, 0.60, 1.0, "ok"), (1, 0.59, 1.0, "ok"), (2, 0.30, 1.0, "ok")])
    line = close_call_line(trials, 341, {(1, 0): "efficientnet_b0"})
    assert line.startswith("close call: 1 of the other 2 trained candidates")
    assert "+-2.7 points" in line and "341 held-out images" in line
    assert line.endswith("trials 0, 1 (efficientnet_b0)")
    assert close_call_line(trials, 100_000) is None
    with_command = close_call_line(trials, 341, train_command="nas-train runs/x --trial N")
    assert with_command.splitlines()[1] == "  judge them by real training before choosing: nas-train runs/x --trial N"
    assert close_call_line(_trials([(0, 0.5, 1.0, "failed")]), 341) is None


def test_a_long_list_is_cut_with_a_count():
    trials = _trials([(t, 0.60 - 0.001 * t, 1.0, "ok") for t in range(9)])
    assert close_call_line(trials, 341, listed=3).endswith("trials 0, 1, 2, 3 and 5 more")
