"""Every candidate at the budget: widths fitted to the FLOPs target, the input size as a decision."""
import json

import numpy as np
import pytest

from nas.errors import UserInputError
from nas.network.counting import profile
from nas.network.scaling import FIT_BOUNDS, FIT_STEP, fit_width, stem1_b0_within, widened
from nas.search.candidates import CandidateDecoder
from nas.search.config import SearchConfig, resolution_steps
from nas.search.resuming import resumed
from search_spaces import REFERENCES
from search_spaces.mnasnet import MnasNetConfig, MnasNetSpace, space_named
from search_spaces.spec import load_spec


def flops(spec):
    return profile(spec, method="analytic")["flops"]


def fitted_space(**fields):
    config = space_named("downsampling").config
    return MnasNetSpace(MnasNetConfig.from_dict({**config.to_dict(), "fit_width": True, **fields}))


def test_a_fit_is_the_widest_factor_within_the_budget():
    """Under the budget, and one hundredth wider is over it: the fit leaves nothing on the table."""
    space = fitted_space()
    rng = np.random.default_rng(0)
    landed = 0
    for _ in range(40):
        shape = space.decode(space.sample(rng), resolution=32, num_classes=10)
        budget = 20e6
        spec, width = fit_width(shape, budget)
        assert FIT_BOUNDS[0] <= width <= FIT_BOUNDS[1]
        assert flops(spec) == flops(widened(shape, width))
        if flops(spec) > budget:  # too large even at the narrowest: left at it, over the budget
            assert width == FIT_BOUNDS[0]
            continue
        if width < FIT_BOUNDS[1]:
            assert flops(widened(shape, width + FIT_STEP)) > budget
        landed += 1
    assert landed >= 20


def test_efficientnet_b0_fitted_to_its_own_flops_keeps_its_width():
    b0 = load_spec(REFERENCES / "efficientnet_b0.json").replace(resolution=224)
    spec, width = fit_width(b0, flops(b0))
    assert width == 1.0 and spec.blocks == b0.blocks
    narrower, width = fit_width(b0, flops(b0) / 2)
    assert 0.6 < width < 0.8 and flops(narrower) <= flops(b0) / 2


def test_the_hand_fix_is_the_fit_of_b0_with_a_stride1_stem():
    """The widest x0.01 width of B0 with a stride-1 stem within B0's FLOPs at 32 px: x0.44 (docs/search.md)."""
    b0 = load_spec(REFERENCES / "efficientnet_b0.json")
    budget = profile(b0, 32, method="analytic", num_classes=10)["flops"]
    fixed = stem1_b0_within(budget, 32, 10)
    assert fixed.name == "b0-stem1-w0.44" and flops(fixed) <= budget
    assert stem1_b0_within(1000, 32, 10) is None  # nothing above x0.1 is that small


def test_the_decoder_fits_every_candidate_and_its_quick_window_check_agrees():
    space = fitted_space()
    target = 8.75e6
    decoder = CandidateDecoder(space, 32, 10, fit_flops=target)
    rng = np.random.default_rng(1)
    inside = 0
    for _ in range(150):
        choices = space.sample(rng)
        spec = decoder(choices)
        assert (spec, spec.provenance["width_fit"]) == fit_width(decoder.shape(choices), target)
        landed = flops(spec)
        assert decoder.fits_in(choices, 0.5 * target, target) == (0.5 * target <= landed <= target)
        inside += 0.5 * target <= landed <= target
    assert inside > 60  # about 55% of uniform draws, against about 4% unfitted (window_levels_32px*.csv)
    plain = CandidateDecoder(space, 32, 10)
    assert "width_fit" not in plain(space.sample(rng)).provenance


def test_the_input_size_is_a_decision_of_the_space():
    space = fitted_space(resolutions=[64, 48, 32])
    assert space.config.resolutions == [32, 48, 64] and space.names[-1] == "input.resolution"
    rng = np.random.default_rng(2)
    seen = set()
    for _ in range(30):
        choices = space.sample(rng)
        spec = space.decode(choices, resolution=224)  # the space's size wins over the run's
        seen.add(spec.resolution)
        assert space.decode(space.encode(spec), resolution=224) == spec
        assert space.nearest(spec.replace(resolution=50))[-1] == 1  # 48 px, the nearest size
    assert seen == {32, 48, 64}
    with pytest.raises(ValueError, match="resolution 40 px is not one of"):
        space.encode(spec.replace(resolution=40))
    # the fields at their old values leave a space's fingerprint as it was: old runs and tables still match
    assert space_named("downsampling").fingerprint == "c27815ced242"
    assert space_named("mnasnet").fingerprint == "a1d0d1126e59"
    assert fitted_space().fingerprint != "c27815ced242"
    with pytest.raises(ValueError, match="resolutions"):
        MnasNetConfig(resolutions=[32, 32])


def test_resolution_steps_run_from_the_stated_size_to_the_stored_one():
    assert resolution_steps(64, 96) == [64, 80, 96]
    assert resolution_steps(64, 500) == [64, 80, 96, 112, 128]
    assert resolution_steps(32, 32) == [32]


def test_a_new_search_fits_widths_and_searches_sizes_up_to_the_stored_one():
    assert not SearchConfig.new(target_flops=9e6, out="x", resolution=32).space.fit_width  # off by default
    config = SearchConfig.new(target_flops=9e6, out="x", resolution=32, max_resolution=48, fit_width=True)
    assert config.space.fit_width and config.space.resolutions == [32, 40, 48]
    assert config.proxy.resolution == 48  # decoded once at the largest; each candidate trains at its own
    assert config.fit_flops == 9e6
    assert SearchConfig.new(target_flops=9e6, out="x", resolution=32, window=(0.5, 0.8),
                            fit_width=True).fit_flops == 9e6 * 0.8
    plain = SearchConfig.new(target_flops=9e6, out="x", resolution=32, data="npz:missing.npz", fit_width=False)
    assert not plain.space.fit_width and plain.space.resolutions == [] and plain.fit_flops is None
    # CIFAR-10 is stored at 32 px: nothing to search at --resolution 32; at MnasNet's 224 px the proxy trains
    # at 32 px whatever the networks' size, so it could not tell sizes apart: not searched either
    assert SearchConfig.new(target_flops=9e6, out="x", resolution=32, data="cifar10:x",
                            fit_width=True).space.resolutions == []
    assert SearchConfig.new(target_flops=9e6, out="x", resolution=224, fit_width=True).space.resolutions == []
    with pytest.raises(UserInputError, match="^max_resolution 448: the proxy trains at its own resolution"):
        SearchConfig.new(target_flops=9e6, out="x", resolution=224, max_resolution=448, fit_width=True)
    with pytest.raises(UserInputError, match="widths are not fitted"):
        SearchConfig.new(target_flops=9e6, out="x", resolution=32, max_resolution=48, fit_width=False)
    with pytest.raises(UserInputError, match="^max_resolution 48: below the networks' resolution, 64 px"):
        SearchConfig.new(target_flops=9e6, out="x", resolution=64, max_resolution=48, fit_width=True)
    with pytest.raises(UserInputError, match="^fit_width: fits the widths to a FLOPs target alone"):
        SearchConfig.new(target_flops=None, target_latency_ms=3.0, latency_table="t.json", out="x", fit_width=True)
    with pytest.raises(UserInputError, match="proxy decodes the images at the largest"):
        SearchConfig.new(target_flops=9e6, out="x", resolution=32, max_resolution=48, proxy_resolution=32,
                         fit_width=True)


def test_a_fitted_run_refuses_another_target_on_resume():
    config = SearchConfig.new(target_flops=9e6, out="x", resolution=32, fit_width=True)
    with pytest.raises(UserInputError, match="fits every network's widths"):
        resumed(config, {"target_flops": 5e6})
    assert resumed(config, {"trials": 80}).trials == 80
    unfitted = SearchConfig.new(target_flops=9e6, out="x", resolution=32)
    assert resumed(unfitted, {"target_flops": 5e6}).objective.target_flops == 5e6  # rescored, as before


def test_the_stored_size_of_a_folder_is_its_images_shorter_side(tmp_path):
    from PIL import Image

    from nas.data.datasets import stored_resolution

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.new("RGB", (72, 56 + i)).save(tmp_path / label / f"{i}.png")
    assert stored_resolution(f"folder:{tmp_path}") == 57  # the median of 56, 57, 58
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 40, 40, 3), np.uint8), y=np.arange(4) % 2)
    assert stored_resolution(f"npz:{tmp_path / 'd.npz'}") == 40
    assert stored_resolution("synthetic") is None and stored_resolution("cifar10:anything") == 32
    assert stored_resolution(f"folder:{tmp_path / 'missing'}") is None


@pytest.mark.usefixtures("shared_ray")
def test_a_search_trains_each_candidate_at_its_size_and_at_the_budget(tmp_path, capsys):
    """End to end: sizes 16 and 24 searched, each candidate fitted to the target at its size and trained
    there; the records, best_b0.json and nas-train's trial spec say the size and the factor."""
    import pandas as pd

    from nas.cli.search import main as search_main
    from nas.search.run import open_run

    out = tmp_path / "run"
    code = search_main(["--data", "synthetic:classes=3,images=400", "--steps", "2", "--batch-size", "16",
                        "--resolution", "16", "--max-resolution", "24", "--space", "downsampling", "--fit-width",
                        "--target-flops", "5M", "--cpus-per-trial", "1", "--scheduler", "none", "--trials", "6",
                        "--controller", "random", "--seed", "3", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "input size searched: 16, 24 px" in printed and "width fitted to the budget" in printed
    run = open_run(out)
    assert run.config.proxy.resolution == 24 and run.space.config.resolutions == [16, 24]
    trials = pd.read_csv(out / "trials.csv")
    trained = trials[trials["status"] == "ok"]
    assert len(trained) == 6 and set(trained["resolution"]) == {16, 24}
    for _, row in trained.iterrows():
        spec = run.decode(json.loads(row["choices"]), name="x")
        assert spec.resolution == row["resolution"] and spec.provenance["width_fit"] == row["width_fit"]
        assert row["flops"] == flops(spec)  # what was trained is what the run decodes
        if row["width_fit"] > FIT_BOUNDS[0]:
            assert 0.8 * 5e6 < row["flops"] <= 5e6  # just under the target
    best = load_spec(out / "best_b0.json")
    assert best.resolution in (16, 24) and best.provenance["width_fit"] >= FIT_BOUNDS[0]
    assert run.trial_spec(int(trained.iloc[0]["trial"])).resolution == trained.iloc[0]["resolution"]
    jobs = [json.loads(params.read_text())["job"] for params in (out / "ray").rglob("params.json")]
    assert len(jobs) == 6  # each Tune trial trained at its candidate's size
    assert all(job["train_resolution"] == job["spec"]["resolution"] in (16, 24) for job in jobs)


def test_the_fit_and_the_sizes_are_fixed_when_a_search_starts(tmp_path):
    from nas import api
    from nas.cli.search import main as search_main

    with pytest.raises(UserInputError, match="--max-resolution: set when a search starts"):
        api.search(out=tmp_path / "run", resume=True, max_resolution=64)
    assert search_main(["--resume", "--out", str(tmp_path / "run"), "--no-fit-width"]) == 2


def test_a_spaces_fit_bounds_are_saved_with_it_and_bound_every_fit():
    assert tuple(MnasNetConfig().fit_bounds) == FIT_BOUNDS
    narrow, wide = fitted_space(), fitted_space(fit_bounds=[0.4, 1.5])
    assert narrow.fingerprint != wide.fingerprint  # they decode the same choices to other networks
    assert space_named("mnasnet").fingerprint == MnasNetSpace(MnasNetConfig(fit_bounds=[0.4, 1.5])).fingerprint
    decoder = CandidateDecoder(wide, 32, 10, fit_flops=8.75e6)
    rng = np.random.default_rng(4)
    widths = [decoder(wide.sample(rng)).provenance["width_fit"] for _ in range(60)]
    assert min(widths) == 0.4 and max(widths) <= 1.5
    with pytest.raises(ValueError, match="fit_bounds"):
        MnasNetConfig(fit_bounds=[0.5, 0.4])
