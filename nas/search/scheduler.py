"""Early stopping by the reward: Ray Tune's ASHA over the step budget, judging what the controller learns.

A trial reports measurements, not rewards; ASHA compares trials at a rung by the search's reward, which this
scheduler computes on the driver from each report (accuracy, FLOPs, the predicted latency of the trial's
architecture) before ASHA sees it.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ray.tune.schedulers import ASHAScheduler

RewardOf = Callable[[Any, dict[str, Any]], float]  # (Tune trial, reported result) -> reward


class RewardASHA(ASHAScheduler):
    """ASHA whose metric, ``reward``, is computed here from each result with ``reward_of``."""

    def __init__(self, reward_of: RewardOf, max_t: int, grace_period: int, reduction_factor: int = 2) -> None:
        super().__init__(time_attr="steps", metric="reward", mode="max", max_t=max_t, grace_period=grace_period,
                         reduction_factor=reduction_factor)
        self.reward_of = reward_of

    @property
    def metric(self) -> None:
        """None for Tune's check that every result carries the metric: this one is computed, not reported."""
        return None

    def _scored(self, trial: Any, result: dict[str, Any]) -> dict[str, Any]:
        if "accuracy" not in result:
            return result
        return dict(result, reward=self.reward_of(trial, result))

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        return super().on_trial_result(tune_controller, trial, self._scored(trial, result))

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        super().on_trial_complete(tune_controller, trial, self._scored(trial, result))


def make_scheduler(name: str, total_steps: int, rungs: Sequence[int], reward_of: RewardOf) -> RewardASHA | None:
    """ASHA with its milestones at ``rungs`` (the same list every trial reports at), or None for ``none``."""
    if name == "none":
        return None
    return RewardASHA(reward_of, max_t=total_steps, grace_period=rungs[0] if rungs else total_steps)
