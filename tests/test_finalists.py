"""nas-search --finalists: the best candidates and the space's nearest B0 trained for real, judged image by image
on the held-out split, the winner written as best_b0.json; the paired interval; the test split left unread."""
import json
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


def test_finalists_are_trained_judged_on_held_out_images_and_the_winner_becomes_best_b0(tmp_path, capsys):
    _npz(tmp_path / "colours.npz", np.random.default_rng(0))
    out = tmp_path / "run"
    assert search_main(["--target-flops", "20M", "--resolution", "32", "--space", "mnasnet", "--flops-window", "0,inf",
                        "--data", f"npz:{tmp_path / 'colours.npz'}", "--proxy-resolution", "16", "--trials", "2",
                        "--steps", "2", "--batch-size", "16", "--concurrency", "1", "--cpus-per-trial", "1",
                        "--no-cache", "--finalists", "1", "--finalist-epochs", "2", "--out", str(out)]) == 0
    table = pd.read_csv(out / "finalists.csv")
    trials = pd.read_csv(out / "trials.csv")
    best_trial = int(trials[trials["status"] == "ok"].sort_values("reward", ascending=False)["trial"].iloc[0])
    assert list(table["name"]) == [f"trial-{best_trial:04d}", "efficientnet_b0-nearest"]
    assert list(table["is_b0"]) == [False, True] and list(table["held_out_images"]) == [60, 60]
    for _, row in table.iterrows():  # recomputed image by image: the same as nas-train's own held-out figure
        result = json.loads((out / "finalists" / row["name"] / "result.json").read_text())
        assert row["held_out_accuracy"] == pytest.approx(result["val_accuracy"], abs=1e-9)
        assert "test_accuracy" not in result  # the finalists are chosen without the test split
        assert result["recipe"]["epochs"] == 2 and result["recipe"]["seed"] == 0
    b0 = table[table["is_b0"]].iloc[0]
    assert b0["margin_over_b0"] == 0 and b0["low95"] == 0 and b0["high95"] == 0
    # the search's reward with the held-out accuracy in the proxy's place: the winner is the best by it
    assert list(table["reward"]) == pytest.approx(list(table["held_out_accuracy"] * (table["flops"] / 20e6) ** -0.07))
    winner = table.sort_values("reward", ascending=False, kind="stable").iloc[0]
    best = json.loads((out / "best_b0.json").read_text())
    judged = best["provenance"]["finalists"]
    assert judged["winner"] == winner["name"] and judged["held_out_accuracy"] == round(winner["held_out_accuracy"], 4)
    assert judged["beyond_noise"] == bool(winner["low95"] > 0 or winner["high95"] < 0)
    assert best["metrics"]["held_out_accuracy"] == judged["held_out_accuracy"] and best["name"] == "run-b0"
    printed = capsys.readouterr().out
    assert "after the search: 1 finalist by proxy reward, the space's nearest EfficientNet-B0 trained 2 epochs" \
        in printed
    assert "finalists: 2 networks" in printed and ("wins (held-out" in printed or "trained best" in printed)
    assert "finalists trained for 2 epochs" in (out / "report.html").read_text()


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
    assert finalists[3].is_b0 and [f.name for f in finalists[3:]] == ["efficientnet_b0-nearest", "b0-stem1-scaled"]
    assert [f.name for f in choose_finalists(open_run(tmp_path, "finalists"), 5)][:5] == [
        "trial-0000", "trial-0003", "trial-0004", "trial-0001", "trial-0002"]  # then the rest by reward


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
    assert [f.name for f in finalists] == ["trial-0000", "efficientnet_b0-nearest", HAND_FIX_NAME]
    fixed = finalists[-1]
    counted = config.with_counted_target(10).objective.target_flops  # EfficientNet-B0's FLOPs at 32 px, 10 classes
    assert fixed.spec.stem_stride == 1 and not fixed.is_b0 and fixed.trial is None
    assert 0.9 * counted < profile(fixed.spec, method="analytic")["flops"] <= counted
    assert not run.space.contains(fixed.spec)
    table = pd.DataFrame([{"name": f.name, "held_out_accuracy": accuracy, "reward": accuracy, "flops": 1,
                           "params": 1, "margin_over_b0": accuracy - 0.5, "low95": 0.01, "high95": 0.1,
                           "beyond_noise": True, "epochs": 15, "held_out_images": 2000}
                          for f, accuracy in zip(finalists, (0.52, 0.5, 0.55))])
    summary = rewrite_best(run, table, finalists)
    best = json.loads((tmp_path / "best_b0.json").read_text())
    assert summary["winner"] == HAND_FIX_NAME and best["stem_stride"] == 1 and best["name"] == "run-b0"
    assert best["provenance"]["choices"] is None and best["provenance"]["trial"] is None
