import numpy as np
import pytest
import torch

from nas.data.datasets import ImageSplits
from search_spaces.spec import spec_from_block_strings
from nas.training.recipe import TrainRecipe, proxy_recipe
from nas.training.proxy import train_candidate

TINY = spec_from_block_strings(["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e3_i16_o24_se0.25"], stem_channels=16,
                               head_channels=64, num_classes=3)


def _separable(n=600, seed=0):
    """Each class has its own dominant colour channel: easily separable."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.uniform(0, 80, (n, 16, 16, 3)).astype(np.uint8)
    x[np.arange(n), :, :, y] += 150
    cut = int(n * 0.8)
    return ImageSplits("separable", x[:cut], y[:cut], x[cut:], y[cut:], 3)


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.1), ("adamw", 0.003)])
def test_learns_separable_data_far_above_chance(optimizer, lr):
    result = train_candidate(TINY, _separable(), proxy_recipe(steps=60, batch_size=64, optimizer=optimizer, lr=lr),
                             device="cpu")
    assert result["status"] == "ok" and result["reason"] == ""
    assert result["accuracy"] > 0.9  # chance is 1/3
    assert result["steps"] == 60 and 0 < result["train_seconds"] < 120
    assert result["images_per_second"] == pytest.approx(60 * 64 / result["train_seconds"])
    assert np.isfinite(result["final_loss"])


def test_epoch_budget_and_reproducibility():
    data = _separable(200)
    a = train_candidate(TINY, data, proxy_recipe(epochs=2, batch_size=32), seed=1)
    b = train_candidate(TINY, data, proxy_recipe(epochs=2, batch_size=32), seed=1)
    assert a["steps"] == 10  # 2 x 160 // 32
    assert a["accuracy"] == b["accuracy"] and a["final_loss"] == b["final_loss"]


def test_nan_loss_fails_the_candidate():
    result = train_candidate(TINY, _separable(200), proxy_recipe(steps=20, lr=1e30), device="cpu")
    assert result["status"] == "failed"
    assert "loss became" in result["reason"]
    assert result["accuracy"] == 0.0 and result["steps"] < 20


def test_budget_validation():
    with pytest.raises(ValueError, match="epochs, steps and batch size must be positive"):
        TrainRecipe(steps=0)
    with pytest.raises(ValueError, match="epochs, steps and batch size must be positive"):
        TrainRecipe(epochs=0)
    with pytest.raises(ValueError, match="optimizer 'adam'"):
        TrainRecipe(steps=1, optimizer="adam")
    assert TrainRecipe(epochs=1, batch_size=100).total_steps(250) == 2  # full batches
    assert TrainRecipe(steps=7).total_steps(10_000) == 7


def test_threads_are_the_callers():
    before = torch.get_num_threads()
    train_candidate(TINY, _separable(100), proxy_recipe(steps=2, batch_size=16))
    assert torch.get_num_threads() == before


def test_rungs_report_held_out_accuracy_and_leave_the_run_unchanged():
    from nas.training.budget import rung_steps

    assert rung_steps(300) == [75, 150] and rung_steps(8) == [2, 4] and rung_steps(1) == []
    data = _separable(300)
    budget = proxy_recipe(steps=24, batch_size=32)
    plain = train_candidate(TINY, data, budget, device="cpu", seed=2)
    reports = []
    with_rungs = train_candidate(TINY, data, budget, device="cpu", seed=2, rungs=rung_steps(24),
                                 report=lambda step, acc: reports.append((step, acc)))
    assert [step for step, _ in reports] == [6, 12]
    held_out = len(data.y_val)  # 60 images: an accuracy is a count of them
    assert all(acc > 0.9 and round(acc * held_out) == pytest.approx(acc * held_out) for _, acc in reports)
    assert with_rungs["accuracy"] == plain["accuracy"] and with_rungs["final_loss"] == plain["final_loss"]


def test_read_only_data_trains_without_a_warning():
    """Ray hands trials read-only arrays: no UserWarning about non-writable arrays (it landed every trial)."""
    import warnings

    data = _separable(200)
    for array in (data.x_train, data.y_train, data.x_val, data.y_val):
        array.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = train_candidate(TINY, data, proxy_recipe(steps=3, batch_size=32), device="cpu")
    assert result["status"] == "ok"


def test_a_compile_that_fails_falls_back_to_eager_with_the_same_result(monkeypatch):
    """torch.compile failing (no C++ toolchain, an unsupported op) at wrap time or at the first call: the run
    goes on eagerly, says so, and trains exactly as without compiling."""
    from nas.network.builder import build_model
    from nas.training.core import init_for_short_training
    from nas.training.proxy import train_model

    data = _separable(200)
    budget = proxy_recipe(steps=6, batch_size=32)

    def fresh():
        torch.manual_seed(0)
        model = build_model(TINY, num_classes=3)
        init_for_short_training(model)
        return model

    eager = train_model(fresh(), data, budget, "cpu", seed=1)
    assert eager["compiled"] is None

    def broken_at_call(model, mode=None):
        def forward(x):
            raise RuntimeError("inductor: no C++ compiler")
        return forward

    monkeypatch.setattr(torch, "compile", broken_at_call)
    fallback = train_model(fresh(), data, budget, "cpu", seed=1, compile_mode="reduce-overhead")
    assert fallback["compiled"] == "eager (RuntimeError while compiling)"
    assert fallback["final_loss"] == eager["final_loss"] and fallback["accuracy"] == eager["accuracy"]

    def broken_at_wrap(model, mode=None):
        raise RuntimeError("no dynamo here")

    monkeypatch.setattr(torch, "compile", broken_at_wrap)
    fallback = train_model(fresh(), data, budget, "cpu", seed=1, compile_mode="reduce-overhead")
    assert fallback["compiled"] == "eager (RuntimeError from torch.compile)"
    assert fallback["final_loss"] == eager["final_loss"]


def test_the_proxy_and_nas_train_run_one_loop_whose_pieces_make_the_whole():
    """One training core: a run trained in pieces (the proxy's rungs, nas-train's epochs, a resume at an
    epoch's start) ends exactly as the run trained at once; the schedule anneals to zero at the run's end."""
    from nas.training.core import Training, build_for_training
    from nas.training.proxy import proxy_splits

    data = _separable(300)
    for recipe in (proxy_recipe(steps=17, batch_size=32), TrainRecipe(epochs=2, batch_size=32, warmup_epochs=0.5)):
        runs = []
        for stops in ([recipe.total_steps(240)], [5, 7, recipe.total_steps(240)]):
            model = build_for_training(TINY, 3, seed=4)
            training = Training(model, proxy_splits(data, torch.device("cpu"))[0], recipe)
            for stop in stops:
                training.run(stop)
            runs.append((training.last_loss, [p.detach().clone() for p in model.parameters()], training.lr))
        assert runs[0][0] == runs[1][0] and all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
        assert runs[0][2] == pytest.approx(0.0, abs=1e-12)  # annealed to its own end
