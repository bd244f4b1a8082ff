"""nas-search --finalists: the best candidates and the space's nearest B0 trained for real, judged image by image
on the held-out split, the winner written as best_b0.json; the paired interval; the test split left unread."""
import json
from pathlib import Path
import math

import numpy as np
import pandas as pd
import pytest

from nas.cli.search import main as search_main
from nas.search.final_stage import paired_difference

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray instance for the commands run in-process


def test_the_paired_interval_is_the_mean_per_image_difference_and_its_normal_interval():
    mine, theirs = np.array([1, 1, 0, 1, 1, 0]), np.array([1, 0, 0, 0, 1, 1])
    margin, low, high = paired_difference(mine, theirs)
    differences = np.array([0, 1, 0, 1, 0, -1])
    half = 1.959964 * differences.std(ddof=1) / math.sqrt(6)
    assert margin == pytest.approx(1 / 6) and (low, high) == pytest.approx((1 / 6 - half, 1 / 6 + half))
    # images both get right or both get wrong cancel: identical networks differ by exactly nothing
    assert paired_difference(mine, mine) == (0.0, 0.0, 0.0)


def _npz(path, rng):
    """Colour-coded classes, with a test split that a search must never read."""
    y = np.arange(300) % 3
    x = rng.integers(0, 80, (300, 24, 24, 3), dtype=np.uint8)
    x[np.arange(300), :, :, y] += 150
    np.savez(path, x=x, y=y, x_test=x[:30], y_test=y[:30])


def check_final_stage(out: Path, epochs: float, printed: str) -> pd.DataFrame:
    """What a finished final stage promises, read from its run directory: each finalist a nas-train run of
    ``epochs`` whose held-out accuracy finalists.csv repeats, the test split unread, the margins over B0, the
    search's reward with the held-out accuracy in the proxy's place, its winner as best_b0.json, and the
    search and the final stage timed apart. The README's walk runs it on the default space (its simple fixes
    among the finalists); test_the_final_stage_of_the_paper_space (slow) on MnasNet's."""
    table = pd.read_csv(out / "finalists.csv")
    trials = pd.read_csv(out / "trials.csv")
    best_trial = int(trials[trials["status"] == "ok"].sort_values("reward", ascending=False)["trial"].iloc[0])
    assert table["name"].iloc[0] == f"trial-{best_trial:04d}" and "efficientnet_b0-nearest" in set(table["name"])
    assert table["is_b0"].sum() == 1 and table["held_out_images"].nunique() == 1
    for _, row in table.iterrows():  # recomputed image by image: the same as nas-train's own held-out figure
        result = json.loads((out / "finalists" / row["name"] / "result.json").read_text())
        assert row["held_out_accuracy"] == pytest.approx(result["val_accuracy"], abs=1e-9)
        assert "test_accuracy" not in result  # the finalists are chosen without the test split
        assert result["recipe"]["epochs"] == epochs and result["recipe"]["seed"] == 0
    b0 = table[table["is_b0"]].iloc[0]
    assert b0["margin_over_b0"] == 0 and b0["low95"] == 0 and b0["high95"] == 0
    assert list(table["margin_over_b0"]) == pytest.approx(list(table["held_out_accuracy"] - b0["held_out_accuracy"]))
    best = json.loads((out / "best_b0.json").read_text())
    target = best["provenance"]["target_flops"]
    # the search's reward with the held-out accuracy in the proxy's place: the winner is the best by it
    assert list(table["reward"]) == pytest.approx(list(table["held_out_accuracy"] * (table["flops"] / target) ** -0.07))
    winner = table.sort_values("reward", ascending=False, kind="stable").iloc[0]
    judged = best["provenance"]["finalists"]
    assert judged["winner"] == winner["name"] and judged["held_out_accuracy"] == round(winner["held_out_accuracy"], 4)
    assert judged["beyond_noise"] == bool(winner["low95"] > 0 or winner["high95"] < 0)
    assert judged["compared"] == list(table["name"]) and judged["epochs"] == epochs
    assert best["metrics"]["held_out_accuracy"] == judged["held_out_accuracy"] and best["name"] == f"{out.name}-b0"
    assert "finalists: " in printed and ("wins (held-out" in printed or "trained best" in printed)
    assert f"finalists trained for {epochs:g} epoch" in (out / "report.html").read_text()
    stages = pd.read_csv(out / "timings.csv")  # the search and its final stage, each timed alone
    assert list(stages["stage"]) == ["search", "final stage"] and set(stages["status"]) == {"finished"}
    each = [pd.read_csv(out / "finalists" / name / "timings.csv").loc[0, "seconds"] for name in table["name"]]
    assert stages.loc[1, "seconds"] >= sum(each) > 0  # the final stage holds its trainings, one after another
    return table


@pytest.mark.slow  # the README's walk checks the same on the default space (check_final_stage)
def test_the_final_stage_of_the_paper_space(tmp_path, capsys):
    _npz(tmp_path / "colours.npz", np.random.default_rng(0))
    out = tmp_path / "run"
    assert search_main(["--target-flops", "20M", "--resolution", "32", "--space", "mnasnet", "--flops-window", "0,inf",
                        "--data", f"npz:{tmp_path / 'colours.npz'}", "--proxy-resolution", "16", "--trials", "2",
                        "--steps", "2", "--batch-size", "16", "--concurrency", "1", "--cpus-per-trial", "1",
                        "--no-cache", "--finalists", "1", "--finalist-epochs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = check_final_stage(out, 2, printed)
    assert list(table["is_b0"]) == [False, True] and list(table["held_out_images"]) == [60, 60]
    assert "after the search: 1 finalist by proxy reward, the space's nearest EfficientNet-B0 trained 2 epochs" \
        in printed


def test_in_a_space_that_searches_the_downsampling_the_best_of_each_level_are_finalists_first(tmp_path):
    """The proxy's top three all downsample 32x; the finalists are the best 32x, the best 16x and the best 8x."""
    from nas.engine.job import Measurement
    from nas.search.final_stage import choose_finalists
    from nas.search.config import SearchConfig
    from nas.search.run import SETTINGS_FILE, open_run
    from nas.search.run_files import append_trial, write_json
    from nas.search.start_points import Sizing, level_start_points
    from nas.search.trial_record import trial_record
    from search_spaces.mnasnet import space_named

    space = space_named("downsampling")
    config = SearchConfig.of(target_flops=8_751_136, out=str(tmp_path), resolution=32, num_classes=10,
                          space=space.config.to_dict())
    write_json(tmp_path / SETTINGS_FILE, {"config": config.to_dict()})
    levels = dict(level_start_points(space, Sizing(8_751_136, (0.5, 1.5), 32, 10)))
    at_32x = [list(levels["b0-32x"]) for _ in range(3)]
    for n, choices in enumerate(at_32x):  # three 32x networks: B0's level with other kernels in block 6
        choices[6 * 6 + 1] = n % 2
        choices[6 * 5 + 1] = n // 2
    networks = at_32x + [levels["b0-16x"], levels["b0-8x"]]
    for trial, (choices, accuracy) in enumerate(zip(networks, (0.50, 0.49, 0.48, 0.45, 0.40))):
        spec = space.decode(choices, resolution=32, num_classes=10)
        append_trial(tmp_path / "trials.csv", trial_record(trial, f"t{trial}", choices, spec,
                                                           Measurement(accuracy=accuracy, flops=8_000_000, params=1),
                                                           "trained", config.objective.score))
    finalists = choose_finalists(open_run(tmp_path, "finalists"), 3)
    assert [f.name for f in finalists][:3] == ["trial-0000", "trial-0003", "trial-0004"]  # 32x, 16x, 8x
    assert [f.spec.downsampling for f in finalists][:3] == [32, 16, 8]
    assert finalists[3].is_b0 and [f.name for f in finalists[3:]] == ["efficientnet_b0-nearest", "b0-stem1-scaled",
                                                                       "b0-8x-32px"]
    assert [f.simple_fix for f in finalists[3:]] == [False, True, True]
    # trials 1 and 2 are near-copies of trial 0 (one or two kernels apart): never finalists beside it
    assert [f.name for f in choose_finalists(open_run(tmp_path, "finalists"), 5)][:4] == [
        "trial-0000", "trial-0003", "trial-0004", "efficientnet_b0-nearest"]


def test_for_small_images_the_hand_fixed_b0_is_a_finalist_and_may_win_from_outside_the_space(tmp_path):
    """In the downsampling space with a FLOPs target: B0 with a stride-1 stem, narrowed to the target, is
    trained beside the space's B0; when it wins, best_b0.json is it, with no choices (it is outside the space)."""
    from nas.engine.job import Measurement
    from nas.files import save_spec
    from nas.network.counting import profile
    from nas.search.final_stage import HAND_FIX_NAME, choose_finalists, rewrite_best
    from nas.search.config import SearchConfig
    from nas.search.run import SETTINGS_FILE, open_run
    from nas.search.run_files import append_trial, write_json
    from nas.search.trial_record import trial_record
    from search_spaces.mnasnet import space_named

    space = space_named("downsampling")
    config = SearchConfig.of(target_flops="b0", out=str(tmp_path), resolution=32, num_classes=10,
                          space=space.config.to_dict())
    write_json(tmp_path / SETTINGS_FILE, {"config": config.to_dict()})
    choices = space.sample(np.random.default_rng(0))
    spec = space.decode(choices, resolution=32, num_classes=10)
    append_trial(tmp_path / "trials.csv", trial_record(0, "t0", choices, spec,
                                                       Measurement(accuracy=0.5, flops=8_000_000, params=1),
                                                       "trained", config.with_counted_target(10).objective.score))
    save_spec(spec.replace(name="run-b0"), tmp_path / "best_b0.json")
    run = open_run(tmp_path, "finalists")
    finalists = choose_finalists(run, 1)
    assert [f.name for f in finalists] == ["trial-0000", "efficientnet_b0-nearest", HAND_FIX_NAME, "b0-8x-32px"]
    fixed = finalists[2]
    counted = config.with_counted_target(10).objective.target_flops  # EfficientNet-B0's FLOPs at 32 px, 10 classes
    assert fixed.spec.stem_stride == 1 and not fixed.is_b0 and fixed.trial is None
    assert 0.9 * counted < profile(fixed.spec, method="analytic")["flops"] <= counted
    assert not run.space.contains(fixed.spec)
    table = pd.DataFrame([{"name": f.name, "held_out_accuracy": accuracy, "reward": accuracy, "flops": 1,
                           "params": 1, "margin_over_b0": accuracy - 0.5, "low95": 0.01, "high95": 0.1,
                           "beyond_noise": True, "epochs": 15, "held_out_images": 2000}
                          for f, accuracy in zip(finalists[:3], (0.52, 0.5, 0.55))])
    summary = rewrite_best(run, table, finalists)
    best = json.loads((tmp_path / "best_b0.json").read_text())
    assert summary["winner"] == HAND_FIX_NAME and best["stem_stride"] == 1 and best["name"] == "run-b0"
    assert best["provenance"]["choices"] is None and best["provenance"]["trial"] is None


def _downsampling_run(tmp_path, accuracies, choices_list):
    """A run directory of the downsampling space at 32 px (B0's FLOPs, 10 classes) with these trained trials."""
    from nas.engine.job import Measurement
    from nas.search.config import SearchConfig
    from nas.search.run import SETTINGS_FILE, open_run
    from nas.search.run_files import append_trial, write_json
    from nas.search.trial_record import trial_record
    from search_spaces.mnasnet import space_named

    space = space_named("downsampling")
    config = SearchConfig.of(target_flops=8_751_136, out=str(tmp_path), resolution=32, num_classes=10,
                             space=space.config.to_dict())
    write_json(tmp_path / SETTINGS_FILE, {"config": config.to_dict()})
    for trial, (choices, accuracy) in enumerate(zip(choices_list, accuracies)):
        spec = space.decode(choices, resolution=32, num_classes=10)
        append_trial(tmp_path / "trials.csv", trial_record(trial, f"t{trial}", choices, spec,
                                                           Measurement(accuracy=accuracy, flops=8_000_000, params=1),
                                                           "trained", config.objective.score))
    return open_run(tmp_path, "finalists")


def test_the_simple_fixes_are_b0_fitted_to_the_target_at_each_level_with_a_small_last_map(tmp_path):
    """At 32 px: B0 at 16x (the hand fix) and 8x (last maps of 2 and 4 px), each within B0's FLOPs and as wide
    as the target allows; 32x (a 1 px map) is the space's B0's business; 4x (8 px) cannot be made narrow
    enough (EfficientNet's rounding keeps 8 channels a layer); 2x (16 px) is past the maps a fix ends at."""
    from nas.network.counting import profile
    from nas.network.scaling import b0_at_level
    from nas.search.final_stage import HAND_FIX_NAME, simple_fixes
    from search_spaces.mnasnet import space_named

    space = space_named("downsampling")
    run = _downsampling_run(tmp_path, [0.5], [space.sample(np.random.default_rng(0))])
    fixes = simple_fixes(run)
    assert [f.name for f in fixes] == [HAND_FIX_NAME, "b0-8x-32px"]
    assert [f.downsampling for f in fixes] == [16, 8]
    assert b0_at_level(8_751_136, 32, 10, 4) is None and b0_at_level(8_751_136, 32, 10, 3) is None
    for fix in fixes:  # fitted: within the target, and one width step wider would not be
        flops = profile(fix, method="analytic")["flops"]
        assert 0.85 * 8_751_136 < flops <= 8_751_136 and not run.space.contains(fix)


def test_halving_continues_the_best_third_of_the_searched_b0_and_the_best_simple_fix():
    from nas.search.final_stage import Finalist, continuing, halves, short_epochs
    from search_spaces.spec import load_spec

    spec = load_spec(Path(__file__).resolve().parents[1] / "search_spaces/references/efficientnet_b0.json")
    searched = [Finalist(f"trial-{n}", n, spec, 0.5) for n in range(4)]
    b0 = Finalist("efficientnet_b0-nearest", None, spec, None, is_b0=True)
    fixes = [Finalist(name, None, spec, None, simple_fix=True) for name in ("fix-a", "fix-b")]
    finalists = searched + [b0] + fixes
    short = pd.DataFrame({"name": [f.name for f in finalists], "reward": [0.4, 0.6, 0.5, 0.55, 0.3, 0.45, 0.5],
                          "best_fix": ["fix-b"] * 7})
    assert [f.name for f in continuing(finalists, short)] == ["trial-1", "trial-3", "efficientnet_b0-nearest",
                                                              "fix-b"]  # ceil(4 / 3) = 2 searched
    assert halves(finalists, 15) and halves(searched[:1] + [b0] + fixes, 15)  # two fixes: one is left out
    assert not halves(searched[:1] + [b0] + fixes[:1], 15)  # nothing to leave out: no short trainings
    assert not halves(finalists, 1) and halves(finalists, 2)  # short trainings of whole epochs, shorter than all
    assert [short_epochs(e) for e in (1, 2, 3, 15, 20)] == [1, 1, 1, 5, 6]


def test_the_verdict_names_the_margins_over_b0_and_over_the_best_simple_fix():
    from nas.search.final_stage import verdict

    line = verdict({"winner": "trial-0007", "held_out_accuracy": 0.6, "margin_over_b0": 0.03,
                    "interval95": [0.01, 0.05], "held_out_images": 2000, "best_fix": "b0-8x-32px",
                    "margin_over_best_fix": 0.004, "fix_interval95": [-0.01, 0.018]})
    assert line == ("finalists: trial-0007 wins (held-out 0.6000), +3.0 points (95% interval +1.0 to +5.0: beyond "
                    "the noise) over the space's nearest EfficientNet-B0, +0.4 points (95% interval -1.0 to +1.8: "
                    "within the noise) over the best simple fix (b0-8x-32px), on 2000 held-out images")


@pytest.mark.slow  # nine nas-train runs: about two minutes
def test_successive_halving_trains_all_briefly_and_the_chosen_ones_to_full_length(tmp_path, capsys):
    _npz(tmp_path / "colours.npz", np.random.default_rng(0))
    out = tmp_path / "run"
    assert search_main(["--target-flops", "b0", "--resolution", "32", "--space", "downsampling",
                        "--data", f"npz:{tmp_path / 'colours.npz'}", "--trials", "3", "--steps", "2",
                        "--batch-size", "16", "--concurrency", "1", "--cpus-per-trial", "1", "--flops-window", "0,inf",
                        "--no-cache", "--finalists", "2", "--finalist-epochs", "3", "--out", str(out)]) == 0
    table = pd.read_csv(out / "finalists.csv")
    full, short = table[table["full_length"]], table[~table["full_length"]]
    assert set(full["epochs"]) == {3} and set(short["epochs"]) == {1}
    assert full["is_b0"].sum() == 1 and full["simple_fix"].sum() == 1  # B0 and the best simple fix continue
    assert (~full["is_b0"] & ~full["simple_fix"]).sum() == 1  # ceil(2 / 3) searched finalists
    assert (out / "finalists" / "short").is_dir() and all((out / "finalists" / name / "result.json").is_file()
                                                          for name in full["name"])
    judged = json.loads((out / "best_b0.json").read_text())["provenance"]["finalists"]
    assert judged["winner"] in set(full["name"]) and judged["full_length"] == list(full["name"])
    fix = full[full["simple_fix"]].iloc[0]
    assert judged.get("best_fix", fix["name"]) == fix["name"] and fix["margin_over_best_fix"] == 0
    assert "over the best simple fix" in capsys.readouterr().out or judged["winner"] == fix["name"]
