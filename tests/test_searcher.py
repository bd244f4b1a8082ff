"""The Ray Tune Searcher adapter, driven through its Tune-facing methods as Tune calls them."""
import copy

from controllers import make_controller
from nas.search import ControllerSearcher, SearchConfig
from search_spaces.mnasnet import default_space


def _searcher(tmp_path, controller, history=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = SearchConfig(target_flops=300_000_000, out=str(tmp_path), trials=6, resolution=64)
    return ControllerSearcher(controller, default_space(), config, 10, tmp_path, history)


def _finish(searcher, trial_id, reward):
    searcher.on_trial_complete(trial_id, {"reward": reward, "accuracy": reward, "flops": 1, "params": 1,
                                          "status": "ok", "reason": "", "seconds": 0.1})


def test_suggest_puts_choices_and_spec_in_the_config(tmp_path):
    searcher = _searcher(tmp_path, make_controller("random", default_space(), seed=0))
    config = searcher.suggest("t0")
    assert len(config["choices"]) == 42 and config["trial"] == 0
    assert config["spec"]["format"] == "nas-b0-spec/1" and config["spec"]["resolution"] == 64
    assert config["spec"]["num_classes"] == 10
    _finish(searcher, "t0", 0.5)
    assert (tmp_path / "trials.csv").exists() and (tmp_path / "best_b0.json").exists()


def test_errored_trial_is_told_zero(tmp_path):
    controller = make_controller("evolution", default_space(), seed=0)
    searcher = _searcher(tmp_path, controller)
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", None, error=True)
    assert searcher.records[0]["status"] == "failed" and searcher.records[0]["reward"] == 0.0
    assert controller.population[-1][1] == 0.0


def test_an_evaluated_architecture_is_not_trained_again(tmp_path):
    space = default_space()
    controller = make_controller("random", space, seed=3)
    upcoming = copy.deepcopy(controller).ask()  # what the controller will propose first
    history = [{"trial": 0, "trial_id": "old", "choices": upcoming, "reward": 0.7, "status": "ok",
                "accuracy": 0.7, "flops": 1, "params": 1}]
    searcher = _searcher(tmp_path, controller, history)
    config = searcher.suggest("t1")
    assert config["choices"] != upcoming and config["trial"] == 1
    assert searcher.duplicates == 1 and controller.num_told == 1  # told the recorded reward instead


def test_save_and_restore_continue_the_same_proposals(tmp_path):
    a = _searcher(tmp_path / "a", make_controller("ppo", default_space(), seed=1))
    for i in range(5):
        a.suggest(f"t{i}")
        _finish(a, f"t{i}", 0.1 * i)
    a.save(str(tmp_path / "ckpt.pkl"))
    b = _searcher(tmp_path / "b", make_controller("ppo", default_space(), seed=99))
    b.restore(str(tmp_path / "ckpt.pkl"))
    assert a.suggest("x")["choices"] == b.suggest("x")["choices"]
    assert b.next_trial == 6
