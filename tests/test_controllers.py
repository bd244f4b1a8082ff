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


def _late_mean(name, seed, samples=160, last=40, **options):
    problem = Additive(seed)
    controller = make_controller(name, SIZES, seed=seed, **options)
    trues = []
    for _ in range(samples):
        choices = controller.ask()
        trues.append(problem.true(choices))
        controller.tell(choices, problem.observe(choices))
    return statistics.mean(trues[-last:]) / problem.best


@pytest.mark.parametrize("name", ["ppo", "reinforce", "evolution", "predictor"])
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


def _flat(value) -> list:
    """A controller state as a flat list of plain values (tensors and arrays unrolled), to compare exactly."""
    if isinstance(value, dict):
        return [item for key in sorted(value, key=str) for item in [key, *_flat(value[key])]]
    if isinstance(value, (list, tuple)):
        return [item for element in value for item in _flat(element)]
    if hasattr(value, "tolist"):
        return _flat(value.tolist())
    return [value]


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_a_nan_reward_is_recorded_as_a_failed_trial(name):
    """A NaN reward leaves exactly the state a reward of 0 (a failure) leaves, with no NaN kept anywhere."""
    told_nan, told_zero = (make_controller(name, default_space(), seed=4) for _ in range(2))
    for controller, failure in ((told_nan, float("nan")), (told_zero, 0.0)):
        for i in range(8):
            controller.tell(controller.ask(), failure if i == 5 else 0.3 + 0.05 * i)
    nan_state, zero_state = _flat(told_nan.state_dict()), _flat(told_zero.state_dict())
    assert not any(isinstance(v, float) and v != v for v in nan_state)
    assert nan_state == zero_state
    assert [told_nan.ask() for _ in range(3)] == [told_zero.ask() for _ in range(3)]


def test_bad_inputs():
    with pytest.raises(ValueError, match="not one of"):
        make_controller("bayes", SIZES)
    controller = make_controller("random", SIZES)
    with pytest.raises(ValueError, match="do not fit"):
        controller.tell([0] * 3, 1.0)
    with pytest.raises(ValueError, match="state of controller 'reinforce' .* does not fit 'ppo'"):
        make_controller("ppo", SIZES).load_state_dict(make_controller("reinforce", SIZES).state_dict())


def test_policy_controllers_leave_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    controller = make_controller("ppo", SIZES, seed=5)
    controller.ask()
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", ["ppo", "reinforce"])
def test_rank_advantages_and_warmup_learn_and_round_trip(name):
    """Rank-based advantages (scale-free) with a uniform warm-up still learn, and survive a state round trip."""
    import pickle

    options = {"rank_window": 40, "warmup": 8}
    ours = statistics.mean(_late_mean(name, s, **options) for s in range(3))
    baseline = statistics.mean(_late_mean("random", s) for s in range(3))
    assert ours > baseline + 0.25, (ours, baseline)
    controller = make_controller(name, SIZES, seed=1, **options)
    for i in range(12):
        choices = controller.ask()
        controller.tell(choices, float(i))
    copy = make_controller(name, SIZES, seed=2, **options)
    copy.load_state_dict(pickle.loads(pickle.dumps(controller.state_dict())))
    assert copy.recent == controller.recent and [copy.ask() for _ in range(5)] == [controller.ask() for _ in range(5)]


def test_rank_advantages_are_centred_ranks():
    controller = make_controller("reinforce", SIZES, seed=0, rank_window=4)
    assert controller.rank_advantages([5.0]) == [0.0]  # one reward: nothing to rank against
    assert controller.rank_advantages([1.0, 9.0]) == pytest.approx([-1.0, 1.0])  # among 5, 1, 9
    assert controller.rank_advantages([5.0]) == pytest.approx([0.0])  # among 5, 1, 9, 5: ties rank in the middle
    assert controller.recent == [5.0, 1.0, 9.0, 5.0]
    controller.rank_advantages([0.0])
    assert controller.recent == [1.0, 9.0, 5.0, 0.0]  # the window keeps the last 4


def test_predictor_never_proposes_a_candidate_twice_even_with_many_asks_outstanding():
    controller = make_controller("predictor", SIZES, seed=0, warmup=5, pool_size=300)
    problem = Additive(0)
    proposed = []
    for _ in range(8):  # batches of 6 asks outstanding, told together, as at concurrency 6
        batch = [controller.ask() for _ in range(6)]
        proposed += [tuple(c) for c in batch]
        for choices in batch:
            controller.tell(choices, problem.observe(choices))
    assert len(set(proposed)) == len(proposed) == 48


def test_predictor_state_loads_with_weights_only(tmp_path):
    controller = make_controller("predictor", SIZES, seed=1, warmup=4, pool_size=200)
    for i in range(7):
        choices = controller.ask()
        controller.tell(choices, float(i))
    controller.ask()  # one outstanding
    torch.save(controller.state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)  # plain containers only: no code on load
    again = make_controller("predictor", SIZES, seed=5)
    again.load_state_dict(state)
    assert again.ask() == controller.ask()


def test_normal_scores_rank_values_and_share_ties():
    from controllers.predictor import normal_scores

    scores = normal_scores(np.array([0.0, 0.5, 0.0, 0.9]))
    assert scores[0] == scores[2] < scores[1] < scores[3]


def test_predictor_takes_free_features_of_the_caller():
    seen = []

    def features(choices):
        seen.append(tuple(choices))
        return [float(sum(choices)), float(choices[0])]

    controller = make_controller("predictor", SIZES, seed=2, warmup=4, pool_size=50, features=features)
    problem = Additive(2)
    for _ in range(8):
        choices = controller.ask()
        controller.tell(choices, problem.observe(choices))
    assert len(seen) > 50  # the fitted observations and the scored pools went through it
    assert controller.encode([[0] * len(SIZES)]).shape == (1, sum(SIZES) + 2)


def test_optuna_beats_random_search():
    seeds = range(3)
    ours = statistics.mean(_late_mean("optuna", s) for s in seeds)
    baseline = statistics.mean(_late_mean("random", s) for s in seeds)
    assert ours > baseline + 0.25, (ours, baseline)


def test_optuna_state_loads_with_weights_only_and_keeps_told_choices_it_never_asked(tmp_path):
    controller = make_controller("optuna", SIZES, seed=1, n_startup_trials=3)
    controller.tell([0] * len(SIZES), 2.0)  # a start point: told without an ask
    for i in range(6):
        choices = controller.ask()
        controller.tell(choices, float(i) / 10)
    controller.ask()  # one outstanding
    torch.save(controller.state_dict(), tmp_path / "state.pt")
    again = make_controller("optuna", SIZES, seed=5)
    again.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert [t.value for t in again.study.trials][:2] == [2.0, 0.0] and again.study.trials[-1].value is None
    assert again.ask() == controller.ask()


def test_optuna_leaves_optunas_logger_as_the_caller_set_it(caplog):
    import logging

    with caplog.at_level(logging.DEBUG, logger="optuna"):  # the caller's level: everything
        controller = make_controller("optuna", SIZES, seed=0)
        controller.tell(controller.ask(), 1.0)
        assert logging.getLogger("optuna").level == logging.DEBUG
    assert not [r for r in caplog.records if r.name.startswith("optuna")]  # no "Trial 0 finished" lines


def test_optuna_missing_is_said_in_one_line(monkeypatch):
    import controllers.optuna_tpe as optuna_tpe

    monkeypatch.setattr(optuna_tpe, "optuna", None)
    with pytest.raises(ValueError, match=r'Optuna is not installed \(pip install -e "\.\[optuna\]"'):
        make_controller("optuna", SIZES)


def test_a_search_asking_for_optuna_without_it_is_a_usage_error(monkeypatch, tmp_path, capsys):
    """Said before anything starts (no run directory), as the flag, with how to install it."""
    import importlib.util

    from nas.cli.search import main as search_main

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else found(name, *a))
    out = tmp_path / "run"
    assert search_main(["--target-flops", "400M", "--controller", "optuna", "--out", str(out)]) == 2
    assert capsys.readouterr().err == ('nas-search: error: --controller optuna: optuna is not installed (pip '
                                       'install -e ".[optuna]", or: pip install optuna)\n')
    assert not out.exists() or not any(out.iterdir())  # nothing written
