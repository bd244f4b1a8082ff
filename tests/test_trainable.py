"""The one results callback: final measurements and errored workers reach the command; rung reports do not."""
from nas.engine.job import Measurement
from nas.engine.trainable import WORKER_ERRORED, JobEvents


class Trial:
    config = {"index": 3}


def test_results_and_errors_reach_the_command_and_rungs_do_not():
    seen = []
    events = JobEvents(on_result=lambda config, measured: seen.append((config["index"], measured)))
    events.on_trial_result(0, [], Trial(), {"accuracy": 0.25, "steps": 2, "final": False, "trial_id": "x"})
    assert seen == []  # a rung report is the scheduler's
    events.on_trial_result(0, [], Trial(), {"accuracy": 0.5, "flops": 7, "steps": 8, "final": True, "done": True})
    events.on_trial_error(0, [], Trial())
    assert seen == [(3, Measurement(accuracy=0.5, flops=7, steps=8)),
                    (3, Measurement(status="failed", reason=WORKER_ERRORED))]


def test_a_pickled_copy_does_nothing():
    import pickle

    copy = pickle.loads(pickle.dumps(JobEvents(on_result=print)))
    copy.on_trial_error(0, [], Trial())  # Tune saves its callbacks with the experiment: no functions in it
    assert copy.on_result is None
