"""The typed search configuration: defaults, search.json round trip, the resume merge, scoring."""
import json
import pickle

import pytest

from nas.search.config import SearchConfig
from nas.errors import UserInputError
from nas.search.resuming import rescores, resumed


def test_defaults_are_the_dataclass_defaults_and_drive_the_help():
    from nas.cli.search import _search_parser

    defaults = SearchConfig.defaults()
    assert defaults["trials"] == 40 and defaults["steps"] == 300 and defaults["w"] == -0.07
    assert defaults["scheduler"] == "asha" and defaults["optimizer"] == "adamw"
    assert "target_flops" not in defaults and "out" not in defaults  # required, no default
    help_text = _search_parser().format_help()
    assert "(default: 32)" in help_text and "(default: 300)" in help_text and "(default: predictor)" in help_text


def test_search_json_round_trip_ignores_keys_of_older_versions():
    config = SearchConfig.of(target_flops=400_000_000, out="runs/x", trials=5, concurrency=2)
    values = config.to_dict() | {"fail_trial": 3}  # a field that older versions wrote
    assert SearchConfig.from_dict(values) == config
    started = SearchConfig.of(target_flops=400_000_000, out="runs/x", start_from=("references",))
    assert SearchConfig.from_dict(json.loads(json.dumps(started.to_dict()))) == started
    older = {k: v for k, v in started.to_dict().items() if k != "start_from"}
    assert SearchConfig.from_dict(older).start_from == ()  # a run from before start points started from none
    assert pickle.loads(pickle.dumps(config)) == config  # what Ray ships to the trials


def test_the_optimizer_sets_the_default_learning_rate_and_old_runs_stay_sgd():
    assert SearchConfig.of(target_flops=1, out="x", optimizer="adamw").proxy.recipe().lr == 0.003
    assert SearchConfig.of(target_flops=1, out="x", optimizer="sgd").proxy.recipe().lr == 0.1
    assert SearchConfig.of(target_flops=1, out="x", optimizer="adamw", lr=0.01).proxy.recipe().lr == 0.01
    budget = SearchConfig.of(target_flops=1, out="x", optimizer="adamw").proxy.recipe()
    assert budget.optimizer == "adamw"
    old = {k: v for k, v in SearchConfig.of(target_flops=1, out="x").to_dict().items() if k != "optimizer"}
    assert SearchConfig.from_dict(old).proxy.optimizer == "sgd"  # a run written before the choice trained with SGD
    with pytest.raises(UserInputError, match="^optimizer 'adam': expected"):
        SearchConfig.of(target_flops=1, out="x", optimizer="adam")
    with pytest.raises(UserInputError, match="^lr -1: must be positive"):
        SearchConfig.of(target_flops=1, out="x", lr=-1.0)


def test_resume_may_change_budget_resources_and_reward_but_not_the_definition():
    saved = SearchConfig.of(target_flops=400_000_000, out="runs/x", trials=5)
    merged = resumed(saved, {"trials": 9, "concurrency": 2, "target_flops": 300_000_000, "no_cache": True,
                            "steps": 300, "out": "elsewhere/x"})
    assert (merged.trials, merged.resources.concurrency, merged.objective.target_flops, merged.resources.no_cache,
            merged.out) == \
        (9, 2, 300_000_000, True, "elsewhere/x")
    assert rescores(saved, merged) and not rescores(saved, resumed(saved, {"trials": 9}))
    with pytest.raises(UserInputError, match="--batch-size 32 differs from the run's \\(64\\)"):
        resumed(saved, {"batch_size": 32})


def test_resume_takes_a_setting_given_at_the_value_the_run_takes_effect_with():
    """None and 'none' stand for values: the optimizer's rate, the data's class count, no start points."""
    saved = SearchConfig.of(target_flops=400_000_000, out="runs/x")
    same = {"lr": 0.003, "num_classes": 3, "start_from": ("none",), "steps": 300}
    assert resumed(saved, same, num_classes=3) == saved
    with pytest.raises(UserInputError, match="^--resume: --num-classes 4 differs from the run's \\(3\\)"):
        resumed(saved, {"num_classes": 4}, num_classes=3)
    with pytest.raises(UserInputError, match="--num-classes 3 differs from the run's \\(None\\)"):
        resumed(saved, {"num_classes": 3})  # nothing trained yet: the class count is not known
    with pytest.raises(UserInputError, match="--start-from references differs from the run's \\(none\\)"):
        resumed(saved, {"start_from": ("references",)})
    started = SearchConfig.of(target_flops=400_000_000, out="runs/x", start_from=("references",))
    assert resumed(started, {"start_from": ("references", "mobilenet_v2")}) == started  # the same three, in order


def test_score_is_mnasnet_reward_and_zero_without_flops():
    config = SearchConfig.of(target_flops=100, out="x")
    assert config.objective.score(0.5, 200) == pytest.approx(0.5 * 2 ** -0.07)
    assert SearchConfig.of(target_flops=100, out="x", reward="hard").objective.score(0.5, 200) == pytest.approx(0.25)
    assert config.objective.score(0.5, 0) == 0.0


def test_budget_follows_steps_or_epochs():
    assert SearchConfig.of(target_flops=1, out="x").proxy.recipe().steps == 300
    budget = SearchConfig.of(target_flops=1, out="x", steps=None, epochs=2.0).proxy.recipe()
    assert budget.steps is None and budget.epochs == 2.0


def test_resolutions_below_the_minimum_are_user_errors():
    with pytest.raises(UserInputError, match="^proxy_resolution 4: must be 8 to 4096"):
        SearchConfig.of(target_flops=1, out="x", proxy_resolution=4)
    with pytest.raises(UserInputError, match="^resolution 4: must be 8 to 4096"):
        SearchConfig.of(target_flops=1, out="x", resolution=4)


def test_the_proxy_is_one_value_read_from_the_flat_configuration():
    config = SearchConfig.of(target_flops=1, out="x", data="npz:a.npz", proxy_resolution=64, epochs=2.0, steps=None,
                          optimizer="sgd", seed=3)
    proxy = config.proxy
    assert (proxy.data, proxy.resolution, proxy.epochs, proxy.steps, proxy.optimizer, proxy.seed) == \
        ("npz:a.npz", 64, 2.0, None, "sgd", 3)
    assert config.proxy.recipe() == proxy.recipe() and proxy.describe() == "2 epochs at 64px, x0.25 width"
    assert "proxy" not in config.to_dict()  # search.json stays flat, as older runs wrote it
    assert config.proxy.width == 0.25 and SearchConfig.of(target_flops=1, out="x", proxy_width=1.0).proxy.width == 1.0
    assert SearchConfig.of(target_flops=1, out="x", proxy_width=1.0).proxy.describe() == "300 steps at 32px"
    with pytest.raises(UserInputError, match="^proxy_width 0: must be above 0"):
        SearchConfig.of(target_flops=1, out="x", proxy_width=0.0)


def test_a_run_saved_before_the_narrow_proxy_reads_at_full_width():
    saved = SearchConfig.of(target_flops=1, out="x").to_dict()
    del saved["proxy_width"]
    assert SearchConfig.from_dict(saved).proxy.width == 1.0
    assert SearchConfig.from_dict(SearchConfig.of(target_flops=1, out="x").to_dict()).proxy.width == 0.25


@pytest.mark.parametrize("w", [0.07, -11.0])
def test_a_w_that_makes_the_reward_meaningless_is_refused(w):
    with pytest.raises(UserInputError, match=f"^w {w:g}: must be between -10 and 0"):
        SearchConfig.of(target_flops=1, out="x", w=w)
    assert SearchConfig.of(target_flops=1, out="x", w=0.0).objective.score(0.5, 10) == 0.5  # 0: the target is ignored


@pytest.mark.parametrize("values, words", [({"seed": -1}, "^seed -1: must be"), ({"seed": 2 ** 32}, "^seed 4294967296"),
                                           ({"val_fraction": 0.0}, "^val_fraction 0: must be between 0 and 1"),
                                           ({"val_fraction": 1.0}, "val_fraction")])
def test_seeds_and_splits_out_of_range_are_refused(values, words):
    with pytest.raises(UserInputError, match=words):
        SearchConfig.of(target_flops=1, out="x", **values)


def test_values_allowed_but_probably_not_meant_are_warned_about():
    assert SearchConfig.of(target_flops=1, out="x").warnings() == []
    assert SearchConfig.of(target_flops=1, out="x", lr=0.03).warnings() == []  # 10x AdamW's default: allowed
    (line,) = SearchConfig.of(target_flops=1, out="x", lr=5.0).warnings()
    assert line.startswith("warning: --lr 5 is 1667x the default of adamw (0.003)")
    (line,) = SearchConfig.of(target_flops=1, out="x", reward="hard", w=-0.2).warnings()
    assert "--w -0.2 is not used by the hard reward" in line


@pytest.mark.parametrize("values, words", [({"resolution": 5000}, "^resolution 5000: must be 8 to 4096"),
                                           ({"proxy_resolution": 8192}, "^proxy_resolution 8192"),
                                           ({"num_classes": 10 ** 6}, "^num_classes 1000000: must be 2..100,000"),
                                           ({"num_classes": 1}, "^num_classes 1")])
def test_sizes_beyond_the_bounds_of_a_spec_are_refused(values, words):
    with pytest.raises(UserInputError, match=words):
        SearchConfig.of(target_flops=1, out="x", **values)


def test_a_space_that_searches_the_downsampling_trains_its_proxy_at_the_given_resolution():
    from search_spaces.mnasnet import space_named

    strided = space_named("downsampling").config.to_dict()
    assert SearchConfig.new(target_flops=1, out="x", space=strided, resolution=64).proxy.resolution == 64
    assert SearchConfig.new(target_flops=1, out="x", space=strided, resolution=64,
                            proxy_resolution=32).proxy.resolution == 32  # what the user gave wins
    assert SearchConfig.new(target_flops=1, out="x", resolution=96).proxy.resolution == 32  # MnasNet's space


def test_the_default_space_searches_the_downsampling_for_small_images_only():
    from search_spaces.mnasnet import space_named

    strided, paper = space_named("downsampling").config.to_dict(), space_named("mnasnet").config.to_dict()
    for resolution, space, proxy in ((32, strided, 32), (64, strided, 64), (65, paper, 32), (224, paper, 32)):
        config = SearchConfig.new(target_flops=9e6, out="x", resolution=resolution)
        assert (config.space.to_dict(), config.proxy.resolution) == (space, proxy)
    assert SearchConfig.new(target_flops=9e6, out="x").space.to_dict() == paper  # no resolution given: 224 px
    given = SearchConfig.new(target_flops=9e6, out="x", resolution=32, space=paper)  # what the user gave wins
    assert given.space.to_dict() == paper and given.start_from == () and given.proxy.resolution == 32
    fitted = SearchConfig.new(target_flops=9e6, out="x", resolution=32, space=paper, fit_width=True)
    assert fitted.space.to_dict() == {**paper, "fit_width": True} and fitted.fit_flops == 9e6  # one flag away
    latency = SearchConfig.new(target_flops=None, target_latency_ms=5.0, latency_table="t.json", out="x",
                               space={**paper, "fit_width": True})
    assert latency.space.to_dict() == paper and latency.fit_flops is None  # a latency target: nothing fitted


def test_a_new_search_on_a_users_data_trains_its_finalists_by_default():
    """3 finalists on any --data but the built-in synthetic (measured on CIFAR-10 and clothing10); what the
    user gives wins; a run saved before the default (finalists 0) resumes without them."""
    from nas.search.config import FINALISTS_ON_REAL_DATA

    assert FINALISTS_ON_REAL_DATA == 3
    for data, finalists in (("folder:photos", 3), ("npz:a.npz", 3), ("cifar10:c10", 3), ("csv:a.csv", 3),
                            ("synthetic", 0), ("synthetic:classes=3,images=100", 0)):
        config = SearchConfig.new(target_flops=9e6, out="x", data=data)
        assert (config.final_stage.finalists, config.final_stage.epochs) == (finalists, 15), data
    assert SearchConfig.new(target_flops=9e6, out="x", data="folder:photos", finalists=0).final_stage.finalists == 0
    assert SearchConfig.new(target_flops=9e6, out="x", data="synthetic", finalists=2).final_stage.finalists == 2
    old = SearchConfig.of(target_flops=9e6, out="x", data="folder:photos")  # as an old search.json reads
    assert old.final_stage.finalists == 0 and resumed(old, {"trials": 50}).final_stage.finalists == 0
    assert resumed(old, {"finalists": 3}).final_stage.finalists == 3


def test_the_api_and_the_command_line_check_a_search_the_same_way(tmp_path):
    from nas.api import search
    from nas.search.driver import preflight

    config = SearchConfig.of(target_flops=1, out="x", resolution=4000, num_classes=100_000)
    with pytest.raises(UserInputError, match="largest network has 533G FLOPs at 4000 px: too large"):
        preflight(config)  # the largest network of the space is past the size bound
    with pytest.raises(UserInputError, match="latency table .*absent.json: no such file"):
        search("400M", out=tmp_path / "run", latency_table=str(tmp_path / "absent.json"))


def test_a_target_named_after_a_reference_is_its_flops_at_the_resolution_with_the_runs_classes():
    from nas.network.counting import profile
    from search_spaces import REFERENCES

    config = SearchConfig.of(target_flops="B0", out="runs/x", resolution=32)
    assert config.objective.target_flops == "efficientnet_b0"  # the name kept until the class count is known
    counted = config.with_counted_target(num_classes=10)
    b0 = REFERENCES / "efficientnet_b0.json"
    assert counted.objective.target_flops == profile(b0, 32, method="fvcore", num_classes=10)["flops"] == 8_751_136
    assert counted.with_counted_target(num_classes=3) == counted  # a number stays as it is
    given = SearchConfig.of(target_flops="mobilenet_v2", out="runs/x", resolution=64, num_classes=5)
    assert given.with_counted_target(10).objective.target_flops == profile(REFERENCES / "mobilenet_v2.json", 64,
                                                                  method="fvcore", num_classes=5)["flops"]
    assert resumed(counted, {"target_flops": "b0"}).objective.target_flops == "efficientnet_b0"  # rescored on resume
    with pytest.raises(UserInputError, match="^target_flops: FLOPs 'b9'"):
        SearchConfig.of(target_flops="b9", out="runs/x")
