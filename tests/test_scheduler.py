"""Early stopping judges the reward the controller learns, at the rungs every trial reports at."""
import pytest
from ray.tune.schedulers import TrialScheduler

from nas.search.config import SearchConfig
from nas.search.scheduler import RewardASHA, make_scheduler
from nas.training.budget import rung_steps


class Trial:
    def __init__(self, trial_id):
        self.trial_id, self.config = trial_id, {}


def _decisions(scheduler, results):
    """Each trial added, then one rung result each, in order: the scheduler's decisions."""
    trials = [Trial(f"t{i}") for i in range(len(results))]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    return [scheduler.on_trial_result(None, trial, result) for trial, result in zip(trials, results)]


def test_asha_stops_by_the_reward_not_by_the_accuracy():
    """Two candidates equally accurate at the first rung, the second at 10x the FLOPs target: by accuracy
    they tie (ASHA would let both go on); by the reward the second is behind and is stopped."""
    config = SearchConfig.of(target_flops=100_000_000, out="unused")
    scheduler = make_scheduler("asha", 8, rung_steps(8),
                               lambda trial, result: config.objective.score(result["accuracy"], result["flops"]))
    on_target = {"steps": 2, "accuracy": 0.5, "flops": 100_000_000}
    too_big = {"steps": 2, "accuracy": 0.5, "flops": 1_000_000_000}
    assert _decisions(scheduler, [on_target, too_big]) == [TrialScheduler.CONTINUE, TrialScheduler.STOP]
    by_accuracy = make_scheduler("asha", 8, rung_steps(8), lambda trial, result: result["accuracy"])
    assert _decisions(by_accuracy, [on_target, too_big]) == [TrialScheduler.CONTINUE, TrialScheduler.CONTINUE]


@pytest.mark.parametrize("total", [8, 30, 40, 300, 1000, 1500])
def test_the_scheduler_milestones_are_the_rungs_the_trials_report_at(total):
    scheduler = make_scheduler("asha", total, rung_steps(total), lambda trial, result: 0.0)
    milestones = sorted(t for t, _ in scheduler._brackets[0]._rungs if t < total)  # ASHA's own list
    assert milestones == rung_steps(total)


def test_no_scheduler_and_no_reported_metric_to_check():
    assert make_scheduler("none", 300, rung_steps(300), lambda trial, result: 0.0) is None
    assert RewardASHA(lambda trial, result: 0.0, max_t=300, grace_period=75).metric is None  # computed, not reported
