"""The Ray Tune Searcher adapter, driven through its Tune-facing methods as Tune calls them."""
import copy

import pytest
from ray.tune.search import Searcher

from controllers import make_controller
from nas.engine.cache import ResultCache
from nas.engine.job import Job, Measurement
from nas.search.config import SearchConfig
from nas.search.searcher import ControllerSearcher
from search_spaces.mnasnet import default_space


class Listener:
    """Collects what the searcher hands on (the run's recorder in a real search)."""

    def __init__(self):
        self.records, self.states = [], []

    def record(self, record, state):
        self.records.append(record)
        self.states.append(state)

    def save_state(self, state):
        self.states.append(state)


def _searcher(controller, history=None, cache=None, **config):
    config = SearchConfig(**{"target_flops": 300_000_000, "out": "unused", "trials": 6, "resolution": 64,
                             "window": (0, float("inf")), **config})
    listener = Listener()
    return ControllerSearcher(controller, default_space(), config, 10, history, listener, cache), listener


def _finish(searcher, trial_id, accuracy, flops=300_000_000):
    searcher.on_trial_complete(trial_id, {"accuracy": accuracy, "flops": flops, "params": 1, "status": "ok",
                                          "reason": "", "seconds": 0.1})


def test_suggest_puts_choices_and_the_job_in_the_config():
    searcher, listener = _searcher(make_controller("random", default_space(), seed=0), seed=7, steps=40)
    config = searcher.suggest("t0")
    assert len(config["choices"]) == 42 and config["trial"] == 0
    job = Job.from_dict(config["job"])
    assert job.spec["format"] == "nas-b0-spec/1" and job.spec["resolution"] == 64
    assert job.spec["num_classes"] == 10 and job.spec["name"] == "trial-0000"
    assert (job.seed, job.cache_seed, job.budget.steps, job.data, job.rungs) == (7, 7, 40, "proxy", ())
    assert listener.states[-1]["told"] == []  # the state after the ask is handed on to be saved
    _finish(searcher, "t0", 0.5)
    assert [r["trial"] for r in listener.records] == [0] and listener.states[-1]["told"] == [0]


def test_the_reward_is_computed_on_the_driver_from_accuracy_and_flops():
    searcher, listener = _searcher(make_controller("random", default_space(), seed=0), w=-0.07)
    searcher.suggest("t0")
    _finish(searcher, "t0", 0.5, flops=600_000_000)  # twice the target: 0.5 * 2 ** -0.07
    assert listener.records[0]["reward"] == pytest.approx(0.5 * 2 ** -0.07)
    hard, listener = _searcher(make_controller("random", default_space(), seed=0), reward="hard")
    hard.suggest("t0")
    _finish(hard, "t0", 0.5, flops=600_000_000)  # hard: exponent -1 over the target
    assert listener.records[0]["reward"] == pytest.approx(0.25)


def test_errored_trial_is_told_zero():
    controller = make_controller("evolution", default_space(), seed=0)
    searcher, listener = _searcher(controller)
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", None, error=True)
    assert listener.records[0]["status"] == "failed" and listener.records[0]["reward"] == 0.0
    assert "errored" in listener.records[0]["reason"]
    assert controller.population[-1][1] == 0.0


def test_an_evaluated_architecture_is_not_trained_again():
    space = default_space()
    controller = make_controller("random", space, seed=3)
    upcoming = copy.deepcopy(controller).ask()  # what the controller will propose first
    history = [{"trial": 0, "trial_id": "old", "choices": upcoming, "reward": 0.7, "status": "ok",
                "accuracy": 0.7, "flops": 1, "params": 1}]
    searcher, _ = _searcher(controller, history)
    config = searcher.suggest("t1")
    assert config["choices"] != upcoming and config["trial"] == 1
    assert searcher.duplicates == 1 and controller.num_told == 1  # told the recorded reward instead


def test_trials_are_numbered_after_the_highest_recorded_one():
    """A kill can lose trial 0 while trial 1 was written: the next trial is 2, never a second 1."""
    history = [{"trial": 1, "trial_id": "old", "choices": [0] * 42, "reward": 0.1, "status": "ok",
                "accuracy": 0.1, "flops": 1, "params": 1}]
    searcher, _ = _searcher(make_controller("random", default_space(), seed=0), history)
    assert searcher.suggest("t")["trial"] == 2


def _cache(path):
    return ResultCache(path, {"proxy": {"data": "p"}}, warn=pytest.fail)


def _job(searcher, choices, trial=0, resolution=64):
    return searcher.job(searcher.space.decode(choices, resolution=resolution, num_classes=10), trial)


def test_a_cached_architecture_is_recorded_from_the_cache_without_a_trial(tmp_path):
    space = default_space()
    cache = _cache(tmp_path / "results.sqlite")
    controller = make_controller("random", space, seed=5)
    probe = copy.deepcopy(controller)  # what the controller will propose first and second
    first, second = probe.ask(), probe.ask()
    searcher, listener = _searcher(controller, cache=cache, trials=3)
    cache.put(_job(searcher, first, trial=40), Measurement(accuracy=0.625, flops=12_345, params=678, seconds=9.0),
              run="earlier")  # trained as another trial of an earlier search with the same seed
    config = searcher.suggest("t0")
    assert config["choices"] == second and config["trial"] == 1  # the first proposal came from the cache
    cached = listener.records[0]
    assert cached["source"] == "cache" and cached["trial"] == 0 and cached["accuracy"] == 0.625
    assert cached["flops"] == 12_345 and cached["params"] == 678
    assert cached["reward"] == pytest.approx(0.625 * (12_345 / 300_000_000) ** -0.07)
    assert controller.num_told == 1  # told like any result
    _finish(searcher, "t0", 0.5)
    assert cached["seconds"] == 0.0  # serving it took no trial
    assert cache.get(_job(searcher, second)).accuracy == 0.5  # trained: cached


def test_a_cached_result_is_recounted_at_another_resolution(tmp_path):
    from nas.network.counting import profile

    space = default_space()
    cache = _cache(tmp_path / "results.sqlite")
    controller = make_controller("random", space, seed=5)
    first = copy.deepcopy(controller).ask()
    searcher, listener = _searcher(controller, cache=cache, resolution=96)
    cache.put(_job(searcher, first, resolution=224), Measurement(accuracy=0.5, flops=1, params=2), run="earlier")
    searcher.suggest("t0")
    expected = profile(space.decode(first, resolution=96, num_classes=10), method="analytic")
    assert listener.records[0]["flops"] == expected["flops"] and listener.records[0]["params"] == expected["params"]


def test_save_and_restore_continue_the_same_proposals(tmp_path):
    a, _ = _searcher(make_controller("ppo", default_space(), seed=1))
    for i in range(5):
        a.suggest(f"t{i}")
        _finish(a, f"t{i}", 0.1 * i)
    a.save(str(tmp_path / "ckpt.pkl"))
    b, _ = _searcher(make_controller("ppo", default_space(), seed=99))
    b.restore(str(tmp_path / "ckpt.pkl"))
    assert a.suggest("x")["choices"] == b.suggest("x")["choices"]
    assert b.next_trial == 6


def test_candidates_outside_the_flops_window_are_recorded_screened_and_not_trained():
    from nas.network.counting import profile

    space = default_space()
    controller = make_controller("random", space, seed=1)
    searcher, listener = _searcher(controller, target_flops=30_000_000, window=(0.9, 1.1), trials=2)
    config = searcher.suggest("t0")
    flops = profile(space.decode(config["choices"], resolution=64, num_classes=10), method="analytic")["flops"]
    assert 27_000_000 <= flops <= 33_000_000  # what becomes a trial is inside the window
    screened = listener.records
    assert screened and all(r["status"] == "screened" and r["source"] == "screened" for r in screened)
    for r in screened:
        assert not 27_000_000 <= r["flops"] <= 33_000_000 and r["reward"] == 0.0  # nothing measured yet
        assert r["reason"].startswith("outside the window: ") and "FLOPs (window 27M-33M)" in r["reason"]
        assert r["accuracy"] == 0.0
    assert config["trial"] == len(screened)  # numbered after the screened ones
    assert controller.num_told == len(screened) and searcher.finished == 0  # screened: told, not counted
    _finish(searcher, "t0", 0.5)
    assert searcher.finished == 1


def test_screening_gives_up_on_a_window_nothing_can_reach(monkeypatch):
    monkeypatch.setattr("nas.search.searcher.MAX_SCREENED", 50)
    searcher, listener = _searcher(make_controller("random", default_space(), seed=0), target_flops=1_000,
                                   window=(0.5, 1.5))
    assert searcher.suggest("t0") is Searcher.FINISHED
    assert searcher.gave_up_screening and 0 < len(listener.records) <= 50


def test_a_long_run_of_screened_proposals_returns_to_tune_between_slices(monkeypatch):
    """suggest() gives Tune's loop a turn (None: ask again) instead of screening for minutes in one call,
    so that Ctrl-C and SIGTERM stop a search whose window nothing reaches; the give-up still comes."""
    monkeypatch.setattr("nas.search.searcher.MAX_SCREENED", 30)
    monkeypatch.setattr("nas.search.searcher.SUGGEST_SLICE_SECONDS", 0.0)
    searcher, listener = _searcher(make_controller("random", default_space(), seed=0), target_flops=1_000,
                                   window=(0.5, 1.5))
    assert searcher.suggest("t0") is None and len(listener.records) == 1  # one screened, then Tune's turn
    answers = [searcher.suggest(f"t{i}") for i in range(1, 40)]
    assert Searcher.FINISHED in answers and answers.index(Searcher.FINISHED) == 28  # the 30th screened
    assert searcher.gave_up_screening and searcher.screened_in_a_row == 30


def test_a_trial_the_scheduler_stopped_is_recorded_stopped_with_its_last_rung():
    searcher, listener = _searcher(make_controller("random", default_space(), seed=0))
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"accuracy": 0.4, "flops": 300_000_000, "params": 1, "status": "ok",
                                      "steps": 75, "final": False, "seconds": 1.0})
    record = listener.records[0]
    assert record["status"] == "stopped" and record["steps"] == 75 and record["accuracy"] == 0.4
    assert record["reward"] == pytest.approx(0.4)  # told its last rung's reward (FLOPs on target)
    assert tuple(record["choices"]) in searcher.evaluated  # proposed again: not retrained


def test_a_screened_candidate_is_told_the_lowest_reward_measured_so_far():
    from nas.search.searcher import screened_reward

    records = [{"status": "ok", "reward": 0.4}, {"status": "failed", "reward": 0.0},
               {"status": "stopped", "reward": 0.3}, {"status": "screened", "reward": 0.3}]
    assert screened_reward(records) == 0.3 and screened_reward([]) == 0.0
    assert screened_reward(records[:2]) == 0.4  # a failure (told 0) does not set the floor


def test_after_a_kill_the_running_trials_are_trained_again_under_their_own_numbers():
    """Trials 0 and 1 were running, trial 0 finished, then the driver was killed: the resumed searcher trains
    trial 1's architecture again as trial 1, and never hands out a number it had handed out before."""
    space = default_space()
    searcher, listener = _searcher(make_controller("random", space, seed=0), trials=8)
    first, second = searcher.suggest("t0"), searcher.suggest("t1")
    _finish(searcher, "t0", 0.5)
    saved = copy.deepcopy(listener.states[-1])  # what controller.pt held at the kill
    assert saved["next_trial"] == 2 and saved["in_flight"] == [[1, second["choices"]]]
    config = SearchConfig(target_flops=300_000_000, out="unused", trials=8, resolution=64, window=(0, float("inf")))
    controller = make_controller("random", space, seed=0)
    controller.load_state_dict(saved["controller"])
    resumed = ControllerSearcher(controller, space, config, 10, list(listener.records), Listener(), saved=saved)
    again = resumed.suggest("r0")
    assert (again["trial"], again["choices"]) == (1, second["choices"])  # trained again, same number
    assert resumed.suggest("r1")["trial"] == 2 and first["trial"] == 0


def _start_points(*names):
    from nas.search.start_points import resolve_start_points

    return resolve_start_points(names, default_space())


def test_start_points_are_trained_first_and_told_to_the_controller():
    space = default_space()
    controller = make_controller("predictor", space, seed=0)
    first_own = copy.deepcopy(controller).ask()
    starts = _start_points("efficientnet_b0", "mobilenet_v2")
    config = SearchConfig(target_flops=300_000_000, out="unused", trials=6, resolution=64, window=(0, float("inf")))
    listener = Listener()
    searcher = ControllerSearcher(controller, space, config, 10, None, listener, start_points=starts,
                                  rungs=(10, 20))
    suggested = [searcher.suggest(f"t{i}") for i in range(3)]
    assert [s["choices"] for s in suggested] == [starts[0][1], starts[1][1], first_own]
    # the start points report only at their end (no scheduler stops them); the controller's candidates at rungs
    assert [Job.from_dict(s["job"]).rungs for s in suggested] == [(), (), (10, 20)]
    assert [s["trial"] for s in suggested] == [0, 1, 2]
    _finish(searcher, "t0", 0.6)
    assert controller.observed == [(starts[0][1], pytest.approx(listener.records[0]["reward"]))]


def test_a_resumed_search_skips_the_start_points_it_recorded():
    space = default_space()
    starts = _start_points("references")
    recorded = starts[1][1]
    history = [{"trial": 0, "trial_id": "old", "choices": recorded, "reward": 0.5, "status": "ok",
                "accuracy": 0.5, "flops": 1, "params": 1}]
    controller = make_controller("random", space, seed=0)
    config = SearchConfig(target_flops=300_000_000, out="unused", trials=6, resolution=64, window=(0, float("inf")))
    searcher = ControllerSearcher(controller, space, config, 10, history, Listener(), start_points=starts)
    proposed = [searcher.suggest(f"t{i}")["choices"] for i in range(2)]
    assert proposed == [starts[0][1], starts[2][1]]
    assert controller.num_asked == 0  # the controller is asked only after the start points


def test_start_from_names_expand_and_bad_ones_are_one_line_errors(tmp_path):
    from nas.errors import UserInputError
    from nas.search.start_points import expand_start_from

    assert expand_start_from(["references", "mobilenet_v2"]) == ("efficientnet_b0", "mnasnet_a1", "mobilenet_v2")
    assert expand_start_from(["none"]) == () and SearchConfig(300, "o", start_from="none").start_from == ()
    assert SearchConfig(300, "o", start_from=["references"]).start_from[0] == "efficientnet_b0"
    with pytest.raises(UserInputError, match="--start-from resnet50: neither a reference network"):
        _start_points("resnet50")
    from search_spaces.random_specs import reference

    inside = tmp_path / "inside.json"
    spec = default_space().decode([1] * 42)
    inside.write_text(spec.to_json())
    assert _start_points(str(inside)) == [(str(inside), default_space().encode(spec))]
    six_blocks = tmp_path / "six.json"
    six_blocks.write_text(reference("efficientnet_b0").replace(blocks=reference("efficientnet_b0").blocks[:6]).to_json())
    with pytest.raises(UserInputError, match=r"^--start-from .*six.json: efficientnet-b0: 6 blocks, the space has 7$"):
        _start_points(str(six_blocks))
