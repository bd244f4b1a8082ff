import statistics

import numpy as np
import pytest
import torch

from controllers import CONTROLLERS, make_controller
from search_spaces.mnasnet import default_space

SIZES = [3, 2, 4, 3, 2, 3, 4, 2, 3, 3]


class Additive:
    """A small seeded problem: per-decision effects plus observation noise."""

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.effects = [rng.normal(0, 1, n) for n in SIZES]
        self.noise = np.random.default_rng(seed + 100)
        self.best = sum(e.max() for e in self.effects)

    def true(self, choices):
        return sum(e[c] for e, c in zip(self.effects, choices))

    def observe(self, choices):
        return self.true(choices) + self.noise.normal(0, 0.3)


def _late_mean(name, seed, samples=160, last=40):
    problem = Additive(seed)
    controller = make_controller(name, SIZES, seed=seed)
    trues = []
    for _ in range(samples):
        choices = controller.ask()
        trues.append(problem.true(choices))
        controller.tell(choices, problem.observe(choices))
    return statistics.mean(trues[-last:]) / problem.best


@pytest.mark.parametrize("name", ["ppo", "reinforce", "evolution"])
def test_beats_random_search(name):
    seeds = range(3)
    ours = statistics.mean(_late_mean(name, s) for s in seeds)
    baseline = statistics.mean(_late_mean("random", s) for s in seeds)
    assert ours > baseline + 0.25, (ours, baseline)


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_seeded_runs_are_reproducible(name):
    def run():
        controller = make_controller(name, SIZES, seed=7)
        out = []
        for i in range(30):
            choices = controller.ask()
            out.append(choices)
            controller.tell(choices, float(sum(choices)) + 0.1 * i)
        return out

    assert run() == run()


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_state_round_trip_continues_exactly(name):
    import pickle

    def drive(controller, steps, start):
        out = []
        pending = [controller.ask(), controller.ask()]  # two asks outstanding at all times
        for i in range(steps):
            choices = pending.pop(0)
            controller.tell(choices, float(np.sin(sum(choices) + start + i)))
            out.append(choices)
            pending.append(controller.ask())
        return out, pending

    original = make_controller(name, SIZES, seed=3)
    drive(original, 21, 0)
    state = pickle.loads(pickle.dumps(original.state_dict()))  # as Ray's Searcher.save would
    copy = make_controller(name, SIZES, seed=99)
    copy.load_state_dict(state)
    assert drive(original, 15, 5) == drive(copy, 15, 5)


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_outstanding_asks_and_failed_trials(name):
    controller = make_controller(name, default_space(), seed=0)
    asked = [controller.ask() for _ in range(12)]
    for i, choices in enumerate(reversed(asked)):
        controller.tell(choices, 0.0 if i % 3 == 0 else 0.5 + 0.01 * i)  # failed trials are told 0
    controller.tell(asked[0], float("nan"))  # a NaN reward counts as a failure, not a crash
    assert controller.num_asked == 12 and controller.num_told == 13
    assert len(controller.ask()) == 42


def test_bad_inputs():
    with pytest.raises(ValueError, match="not one of"):
        make_controller("bayes", SIZES)
    controller = make_controller("random", SIZES)
    with pytest.raises(ValueError, match="do not fit"):
        controller.tell([0] * 3, 1.0)
    with pytest.raises(ValueError):
        make_controller("ppo", SIZES).load_state_dict(make_controller("reinforce", SIZES).state_dict())


def test_policy_controllers_leave_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    controller = make_controller("ppo", SIZES, seed=5)
    controller.ask()
    assert torch.equal(torch.rand(3), expected)
