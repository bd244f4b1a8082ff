"""The search loop, driven directly as the Tune loop (a thin adapter, tested last) drives it: suggest a job,
complete it with a result; no Ray."""
import copy

import pytest

from controllers import make_controller
from nas.engine.cache import ResultCache
from nas.engine.job import Job, Measurement
from nas.search.config import SearchConfig
from nas.search.loop import DONE, SearchLoop
from search_spaces.mnasnet import default_space
from search_spaces.spec import load_spec


class RecordedRun:
    """The real Recorder on a run directory, read back as a resumed search reads it: the records from
    trials.csv, the state from the controller state file."""

    def __init__(self, run_dir, config, space, history=None):
        from nas.search.recorder import Recorder
        from nas.search.run import SETTINGS_FILE, write_space_file
        from nas.search.run_files import write_json

        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / SETTINGS_FILE, {"config": config.to_dict(), "space_fingerprint": space.fingerprint})
        write_space_file(run_dir, space)
        self.lines = []
        self.recorder = Recorder(run_dir, config, space, 10, history, log=self.lines.append, start_points=[])

    @property
    def records(self):
        from nas.search.driver import load_history

        self.recorder.flush()  # screened candidates are written in batches
        return load_history(self.recorder.run_dir)

    @property
    def state(self):
        from nas.search.run_files import STATE_FILE, load_state

        return load_state(self.recorder.run_dir / STATE_FILE)


def _config(run_dir, **values):
    return SearchConfig.of(**{"target_flops": 300_000_000, "out": str(run_dir), "trials": 6, "resolution": 64,
                           "window": (0, float("inf")), **values})


def _loop(run_dir, controller, history=None, cache=None, start_points=None, rungs=(), saved=None, **config):
    """A search loop whose records go through the real Recorder in ``run_dir``; (the loop, the recorded run)."""
    config = _config(run_dir, **config)
    run = RecordedRun(run_dir, config, default_space(), history)
    loop = SearchLoop(controller, default_space(), config, 10, history, run.recorder, cache,
                          start_points=start_points or (), rungs=rungs, saved=saved)
    return loop, run


def _finish(loop, trial_id, accuracy, flops=300_000_000):
    loop.complete(trial_id, {"accuracy": accuracy, "flops": flops, "params": 1, "status": "ok",
                                          "reason": "", "seconds": 0.1})


def test_suggest_puts_choices_and_the_job_in_the_config(tmp_path):
    loop, run = _loop(tmp_path / "run", make_controller("random", default_space(), seed=0), seed=7, steps=40)
    config = loop.suggest("t0")
    assert len(config["choices"]) == 42 and config["trial"] == 0
    job = Job.from_dict(config["job"])
    assert job.spec["format"] == "nas-b0-spec/1" and job.spec["resolution"] == 64
    assert job.spec["num_classes"] == 10 and job.spec["name"] == "trial-0000"
    assert (job.seed, job.cache_seed, job.budget.steps, job.data, job.rungs) == (7, 7, 40, "proxy", ())
    assert run.state["told"] == []  # the state after the ask is handed on to be saved
    _finish(loop, "t0", 0.5)
    assert [r["trial"] for r in run.records] == [0] and run.state["told"] == [0]
    best = load_spec(tmp_path / "run" / "best_b0.json")  # the first result is the best so far
    assert best.provenance["choices"] == config["choices"] and best.metrics["proxy_accuracy"] == 0.5
    assert run.lines[-1].startswith("trial   0 finished") and "acc 0.500" in run.lines[-1]


def test_the_reward_is_computed_on_the_driver_from_accuracy_and_flops(tmp_path):
    loop, run = _loop(tmp_path / "run", make_controller("random", default_space(), seed=0), w=-0.07)
    loop.suggest("t0")
    _finish(loop, "t0", 0.5, flops=600_000_000)  # twice the target: 0.5 * 2 ** -0.07
    assert run.records[0]["reward"] == pytest.approx(0.5 * 2 ** -0.07)
    hard, run = _loop(tmp_path / "hard", make_controller("random", default_space(), seed=0), reward="hard")
    hard.suggest("t0")
    _finish(hard, "t0", 0.5, flops=600_000_000)  # hard: exponent -1 over the target
    assert run.records[0]["reward"] == pytest.approx(0.25)


def test_errored_trial_is_told_zero(tmp_path):
    controller = make_controller("evolution", default_space(), seed=0)
    loop, run = _loop(tmp_path / "run", controller)
    loop.suggest("t0")
    loop.complete("t0", None, error=True)
    assert run.records[0]["status"] == "failed" and run.records[0]["reward"] == 0.0
    assert "errored" in run.records[0]["reason"]
    assert controller.population[-1][1] == 0.0


def test_an_evaluated_architecture_is_not_trained_again(tmp_path):
    space = default_space()
    controller = make_controller("random", space, seed=3)
    upcoming = copy.deepcopy(controller).ask()  # what the controller will propose first
    history = [{"trial": 0, "trial_id": "old", "choices": upcoming, "reward": 0.7, "status": "ok",
                "accuracy": 0.7, "flops": 1, "params": 1}]
    loop, _ = _loop(tmp_path / "run", controller, history)
    config = loop.suggest("t1")
    assert config["choices"] != upcoming and config["trial"] == 1
    assert loop.duplicates == 1 and controller.num_told == 1  # told the recorded reward instead


def test_trials_are_numbered_after_the_highest_recorded_one(tmp_path):
    """A kill can lose trial 0 while trial 1 was written: the next trial is 2, never a second 1."""
    history = [{"trial": 1, "trial_id": "old", "choices": [0] * 42, "reward": 0.1, "status": "ok",
                "accuracy": 0.1, "flops": 1, "params": 1}]
    loop, _ = _loop(tmp_path / "run", make_controller("random", default_space(), seed=0), history)
    assert loop.suggest("t")["trial"] == 2


def _cache(path):
    return ResultCache(path, {"proxy": {"data": "p"}}, warn=pytest.fail)


def _job(loop, choices, trial=0, resolution=64):
    return loop.job(loop.space.decode(choices, resolution=resolution, num_classes=10), trial)


def test_a_cached_architecture_is_recorded_from_the_cache_without_a_trial(tmp_path):
    space = default_space()
    cache = _cache(tmp_path / "results.sqlite")
    controller = make_controller("random", space, seed=5)
    probe = copy.deepcopy(controller)  # what the controller will propose first and second
    first, second = probe.ask(), probe.ask()
    loop, run = _loop(tmp_path / "run", controller, cache=cache, trials=3)
    cache.put(_job(loop, first, trial=40), Measurement(accuracy=0.625, flops=12_345, params=678, seconds=9.0),
              run="earlier")  # trained as another trial of an earlier search with the same seed
    config = loop.suggest("t0")
    assert config["choices"] == second and config["trial"] == 1  # the first proposal came from the cache
    cached = run.records[0]
    assert cached["source"] == "cache" and cached["trial"] == 0 and cached["accuracy"] == 0.625
    assert cached["flops"] == 12_345 and cached["params"] == 678
    assert cached["reward"] == pytest.approx(0.625 * (12_345 / 300_000_000) ** -0.07)
    assert controller.num_told == 1  # told like any result
    _finish(loop, "t0", 0.5)
    assert cached["seconds"] == 0.0  # serving it took no trial
    assert cache.get(_job(loop, second)).accuracy == 0.5  # trained: cached


def test_a_cached_result_is_recounted_at_another_resolution(tmp_path):
    from nas.network.counting import profile

    space = default_space()
    cache = _cache(tmp_path / "results.sqlite")
    controller = make_controller("random", space, seed=5)
    first = copy.deepcopy(controller).ask()
    loop, run = _loop(tmp_path / "run", controller, cache=cache, resolution=96)
    cache.put(_job(loop, first, resolution=224), Measurement(accuracy=0.5, flops=1, params=2), run="earlier")
    loop.suggest("t0")
    expected = profile(space.decode(first, resolution=96, num_classes=10), method="analytic")
    assert run.records[0]["flops"] == expected["flops"] and run.records[0]["params"] == expected["params"]


def test_save_and_restore_continue_the_same_proposals(tmp_path):
    a, _ = _loop(tmp_path / "a", make_controller("ppo", default_space(), seed=1))
    for i in range(5):
        a.suggest(f"t{i}")
        _finish(a, f"t{i}", 0.1 * i)
    a.save(str(tmp_path / "ckpt.pkl"))
    b, _ = _loop(tmp_path / "b", make_controller("ppo", default_space(), seed=99))
    b.restore(str(tmp_path / "ckpt.pkl"))
    assert a.suggest("x")["choices"] == b.suggest("x")["choices"]
    assert b.next_trial == 6


def test_candidates_outside_the_flops_window_are_recorded_screened_and_not_trained(tmp_path):
    from nas.network.counting import profile

    space = default_space()
    controller = make_controller("random", space, seed=1)
    loop, run = _loop(tmp_path / "run", controller, target_flops=30_000_000, window=(0.9, 1.1), trials=2)
    config = loop.suggest("t0")
    flops = profile(space.decode(config["choices"], resolution=64, num_classes=10), method="analytic")["flops"]
    assert 27_000_000 <= flops <= 33_000_000  # what becomes a trial is inside the window
    screened = run.records
    assert screened and all(r["status"] == "screened" and r["source"] == "screened" for r in screened)
    for r in screened:
        assert not 27_000_000 <= r["flops"] <= 33_000_000 and r["reward"] == 0.0  # nothing measured yet
        assert r["reason"].startswith("outside the window: ") and "FLOPs (window 27M-33M)" in r["reason"]
        assert r["accuracy"] == 0.0
    assert config["trial"] == len(screened)  # numbered after the screened ones
    assert controller.num_told == len(screened) and loop.finished == 0  # screened: told, not counted
    _finish(loop, "t0", 0.5)
    assert loop.finished == 1


def test_the_predictor_proposes_only_candidates_inside_the_flops_window(tmp_path):
    """The loop gives the controller its pre-screen as ``feasible``: the predictor's warm-up samples and
    pools keep to it, so none of its asks is screened (a random controller's are, most of them)."""
    from nas.network.counting import profile

    space = default_space()
    window = dict(target_flops=30_000_000, window=(0.9, 1.1), trials=14)
    loop, run = _loop(tmp_path / "p", make_controller("predictor", space, seed=1), **window)
    for i in range(14):  # the 10 warm-up samples, then 4 from fitted pools
        config = loop.suggest(f"t{i}")
        flops = profile(space.decode(config["choices"], resolution=64, num_classes=10), method="analytic")["flops"]
        assert 27_000_000 <= flops <= 33_000_000
        _finish(loop, f"t{i}", 0.3 + 0.01 * i, flops=flops)
    assert not [r for r in run.records if r["status"] == "screened"]
    assert loop.in_window(config["choices"]) and not loop.in_window([0] * len(space.sizes))
    blind, blind_run = _loop(tmp_path / "r", make_controller("random", space, seed=1), **window)
    blind.suggest("t0")
    assert [r for r in blind_run.records if r["status"] == "screened"]


def test_screening_gives_up_on_a_window_nothing_can_reach(tmp_path, monkeypatch):
    monkeypatch.setattr("nas.search.loop.MAX_SCREENED", 50)
    loop, run = _loop(tmp_path / "run", make_controller("random", default_space(), seed=0), target_flops=1_000,
                                   window=(0.5, 1.5))
    assert loop.suggest("t0") is DONE
    assert loop.gave_up_screening and 0 < len(run.records) <= 50


def test_the_predictor_stops_consulting_a_window_it_cannot_reach(tmp_path, monkeypatch):
    """After 3 asks in which the window passed nothing, the predictor proposes as without it, so the search
    gives up on an unreachable window as soon as before (not after minutes of counting candidates)."""
    monkeypatch.setattr("nas.search.loop.MAX_SCREENED", 50)
    controller = make_controller("predictor", default_space(), seed=0)
    loop, run = _loop(tmp_path / "run", controller, target_flops=1_000, window=(0.5, 1.5))
    while (answer := loop.suggest("t0")) is None:
        pass
    assert answer is DONE and loop.gave_up_screening and len(run.records) == 50
    assert controller.misses == 3


def test_a_long_run_of_screened_proposals_returns_to_tune_between_slices(tmp_path, monkeypatch):
    """suggest() gives Tune's loop a turn (None: ask again) instead of screening for minutes in one call,
    so that Ctrl-C and SIGTERM stop a search whose window nothing reaches; the give-up still comes."""
    monkeypatch.setattr("nas.search.loop.MAX_SCREENED", 30)
    monkeypatch.setattr("nas.search.loop.SUGGEST_SLICE_SECONDS", 0.0)
    loop, run = _loop(tmp_path / "run", make_controller("random", default_space(), seed=0), target_flops=1_000,
                                   window=(0.5, 1.5))
    assert loop.suggest("t0") is None and len(run.records) == 1  # one screened, then Tune's turn
    answers = [loop.suggest(f"t{i}") for i in range(1, 40)]
    assert DONE in answers and answers.index(DONE) == 28  # the 30th screened
    assert loop.gave_up_screening and loop.screened_in_a_row == 30


def test_a_trial_the_scheduler_stopped_is_recorded_stopped_with_its_last_rung(tmp_path):
    loop, run = _loop(tmp_path / "run", make_controller("random", default_space(), seed=0))
    loop.suggest("t0")
    loop.complete("t0", {"accuracy": 0.4, "flops": 300_000_000, "params": 1, "status": "ok",
                                      "steps": 75, "final": False, "seconds": 1.0})
    record = run.records[0]
    assert record["status"] == "stopped" and record["steps"] == 75 and record["accuracy"] == 0.4
    assert record["reward"] == pytest.approx(0.4)  # told its last rung's reward (FLOPs on target)
    assert tuple(record["choices"]) in loop.evaluated  # proposed again: not retrained


def test_a_screened_candidate_is_told_the_lowest_reward_measured_so_far():
    from nas.search.loop import screened_reward

    records = [{"status": "ok", "reward": 0.4}, {"status": "failed", "reward": 0.0},
               {"status": "stopped", "reward": 0.3}, {"status": "screened", "reward": 0.3}]
    assert screened_reward(records) == 0.3 and screened_reward([]) == 0.0
    assert screened_reward(records[:2]) == 0.4  # a failure (told 0) does not set the floor


def test_after_a_kill_the_running_trials_are_trained_again_under_their_own_numbers(tmp_path):
    """Trials 0 and 1 were running, trial 0 finished, then the driver was killed: the resumed loop trains
    trial 1's architecture again as trial 1, and never hands out a number it had handed out before."""
    space = default_space()
    loop, run = _loop(tmp_path / "run", make_controller("random", space, seed=0), trials=8)
    first, second = loop.suggest("t0"), loop.suggest("t1")
    _finish(loop, "t0", 0.5)
    saved = copy.deepcopy(run.state)  # what controller.pt held at the kill
    assert saved["next_trial"] == 2 and saved["in_flight"] == [[1, second["choices"]]]
    controller = make_controller("random", space, seed=0)
    controller.load_state_dict(saved["controller"])
    resumed, _ = _loop(tmp_path / "run", controller, run.records, saved=saved, trials=8)  # the same run
    again = resumed.suggest("r0")
    assert (again["trial"], again["choices"]) == (1, second["choices"])  # trained again, same number
    assert resumed.suggest("r1")["trial"] == 2 and first["trial"] == 0


def _start_points(*names):
    from nas.search.start_points import resolve_start_points

    return resolve_start_points(names, default_space())


def test_start_points_are_trained_first_and_told_to_the_controller(tmp_path):
    space = default_space()
    controller = make_controller("predictor", space, seed=0)
    first_own = copy.deepcopy(controller).ask()
    starts = _start_points("efficientnet_b0", "mobilenet_v2")
    loop, run = _loop(tmp_path / "run", controller, start_points=starts, rungs=(10, 20))
    suggested = [loop.suggest(f"t{i}") for i in range(3)]
    assert [s["choices"] for s in suggested] == [starts[0][1], starts[1][1], first_own]
    # the start points report only at their end (no scheduler stops them); the controller's candidates at rungs
    assert [Job.from_dict(s["job"]).rungs for s in suggested] == [(), (), (10, 20)]
    assert [s["trial"] for s in suggested] == [0, 1, 2]
    _finish(loop, "t0", 0.6)
    assert controller.observed == [(starts[0][1], pytest.approx(run.records[0]["reward"]))]


def test_a_resumed_search_skips_the_start_points_it_recorded(tmp_path):
    space = default_space()
    starts = _start_points("references")
    recorded = starts[1][1]
    history = [{"trial": 0, "trial_id": "old", "choices": recorded, "reward": 0.5, "status": "ok",
                "accuracy": 0.5, "flops": 1, "params": 1}]
    controller = make_controller("random", space, seed=0)
    loop, _ = _loop(tmp_path / "run", controller, history, start_points=starts)
    proposed = [loop.suggest(f"t{i}")["choices"] for i in range(2)]
    assert proposed == [starts[0][1], starts[2][1]]
    assert controller.num_asked == 0  # the controller is asked only after the start points


def test_start_from_names_expand_and_bad_ones_are_one_line_errors(tmp_path):
    from nas.errors import UserInputError
    from nas.search.start_points import expand_start_from

    assert expand_start_from(["references", "mobilenet_v2"]) == ("efficientnet_b0", "mnasnet_a1", "mobilenet_v2")
    assert expand_start_from(["none"]) == () and SearchConfig.of(target_flops=300, out="o", start_from="none").start_from == ()
    assert SearchConfig.of(target_flops=300, out="o", start_from=["references"]).start_from[0] == "efficientnet_b0"
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


def test_the_loop_imports_no_ray_and_the_tune_searcher_only_translates(tmp_path):
    import subprocess
    import sys

    from ray.tune.search import Searcher

    from nas.search.searcher import ControllerSearcher

    code = "import sys, nas.search.loop; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    loop, run = _loop(tmp_path / "run", make_controller("random", default_space(), seed=0), trials=1)
    searcher = ControllerSearcher(loop)
    config = searcher.suggest("t0")
    assert config["trial"] == 0 and loop.live["t0"].trial == 0  # the loop's proposal, as it made it
    searcher.on_trial_complete("t0", {"accuracy": 0.5, "flops": 300_000_000, "params": 1, "status": "ok",
                                      "seconds": 1.0, "steps": 40})
    assert [r["trial"] for r in run.records] == [0] and loop.finished == 1
    assert searcher.suggest("t1") == Searcher.FINISHED  # the loop's DONE, in Tune's word
    searcher.save(str(tmp_path / "searcher.pt"))
    again, _ = _loop(tmp_path / "again", make_controller("random", default_space(), seed=0), trials=1)
    ControllerSearcher(again).restore(str(tmp_path / "searcher.pt"))
    assert again.finished == 1 and again.next_trial == 1
