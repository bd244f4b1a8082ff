"""nas-train's recipe, augmentation, checkpoints and training loop, without Ray (tests/test_nas_train.py runs it
on Ray Train)."""
import math

import numpy as np
import pytest
import torch

from nas.data.datasets import ImageSplits
from nas.training.augment import crop_boxes, random_resized_crop_flip
from nas.training.checkpoints import (BEST, LAST, PREVIOUS, CheckpointError, check_architecture, latest_checkpoint,
                                      load_checkpoint, save_checkpoint)
from nas.training.full import METRICS, train_network
from nas.training.recipe import TrainRecipe, ema_weight, make_optimizer, make_schedule, param_groups
from search_spaces.spec import architecture_hash, spec_from_block_strings

TINY = spec_from_block_strings(["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e3_i16_o24_se0.25"], stem_channels=16,
                               head_channels=64, num_classes=3, resolution=16)


def separable(n=400, seed=0, resolution=16):
    """Each class has its own dominant colour channel: easily separable."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.uniform(0, 80, (n, resolution, resolution, 3)).astype(np.uint8)
    x[np.arange(n), :, :, y] += 150
    cut = int(n * 0.8)
    return ImageSplits("separable", x[:cut], y[:cut], x[cut:], y[cut:], 3)


def test_the_recipe_scales_the_learning_rate_with_the_batch_and_checks_its_values():
    assert TrainRecipe(batch_size=256, optimizer="sgd").lr == pytest.approx(0.1)
    assert TrainRecipe(batch_size=512, optimizer="sgd").lr == pytest.approx(0.2)
    assert TrainRecipe().optimizer == "adamw" and TrainRecipe(batch_size=128).lr == pytest.approx(0.004)
    assert TrainRecipe(batch_size=128, optimizer="rmsprop").lr == pytest.approx(0.008)
    assert TrainRecipe(lr=0.01).lr == 0.01
    for bad, said in ((dict(optimizer="lamb"), "optimizer 'lamb': expected one of sgd"),
                      (dict(ema_decay=1.0), r"EMA decay 1.0: must be in \[0, 1\)"),
                      (dict(crop_scale=0), r"crop scale 0: must be in \(0, 1\]"),
                      (dict(epochs=0), "epochs, steps and batch size must be positive")):
        with pytest.raises(ValueError, match=said):
            TrainRecipe(**bad)
    recipe = TrainRecipe(optimizer="adamw", epochs=3)
    assert TrainRecipe.from_dict({**recipe.to_dict(), "unknown": 1}) == recipe


def test_no_weight_decay_on_batchnorm_or_biases():
    from nas.network.builder import build_model

    model = build_model(TINY)
    decay, no_decay = param_groups(model, 1e-4)
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim <= 1 for p in no_decay["params"])
    bn_and_bias = [p for m in model.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.Linear))
                   for name, p in m.named_parameters(recurse=False) if isinstance(m, torch.nn.BatchNorm2d) or
                   name == "bias"]
    assert {id(p) for p in bn_and_bias} <= {id(p) for p in no_decay["params"]}
    for name in ("sgd", "adamw", "rmsprop"):
        assert len(make_optimizer(model, TrainRecipe(optimizer=name)).param_groups) == 2


def test_warm_up_then_cosine_to_zero():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    recipe = TrainRecipe(epochs=10, warmup_epochs=2, lr=1.0, batch_size=10)  # 10 steps per epoch of 100 images
    schedule = make_schedule(optimizer, recipe.total_steps(100), recipe.warmup_steps(100))
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == pytest.approx(1 / 21) and lrs[:20] == sorted(lrs[:20])  # linear warm-up over 20 steps
    assert max(lrs) == pytest.approx(1.0, abs=0.01) and lrs[20:] == sorted(lrs[20:], reverse=True)
    assert lrs[60] == pytest.approx(0.5 * (1 + math.cos(math.pi * 40 / 80)))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)


def test_the_ema_warms_up_as_tensorflow_does():
    assert ema_weight(0.9999, 0) == pytest.approx(0.9)  # 1 - 1/10: the first updates mostly replace the average
    assert ema_weight(0.9999, 90) == pytest.approx(1 - 91 / 100)
    assert ema_weight(0.99, 10 ** 6) == pytest.approx(0.01)  # then the decay itself


def test_random_resized_crops_stay_inside_the_image_and_flip_half_the_time():
    generator = torch.Generator().manual_seed(0)
    theta = crop_boxes(4000, (0.35, 1.0), generator, torch.device("cpu"))
    width, height = theta[:, 0, 0].abs(), theta[:, 1, 1]
    assert bool(((theta[:, 0, 2].abs() + width) <= 1 + 1e-6).all() and ((theta[:, 1, 2].abs() + height) <= 1 + 1e-6).all())
    area = width * height
    assert float(area.min()) >= 0.35 - 1e-6 and float(area.max()) <= 1.0
    assert 0.45 < float((theta[:, 0, 0] < 0).float().mean()) < 0.55
    images = torch.rand(5, 3, 24, 24)
    out = random_resized_crop_flip(images, (0.35, 1.0), generator)
    assert out.shape == images.shape and not torch.allclose(out, images)
    # a full-size crop with no mirror is the identity
    grid = torch.nn.functional.affine_grid(torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]), [1, 3, 24, 24],
                                           align_corners=False)
    assert torch.allclose(torch.nn.functional.grid_sample(images[:1], grid, align_corners=False), images[:1],
                          atol=1e-5)


def test_it_learns_and_writes_metrics_checkpoints_and_accuracies(tmp_path):
    data = separable()
    rows = []
    final = train_network(TINY, data.with_test(data.x_val[:50], data.y_val[:50]),
                          TrainRecipe(epochs=4, batch_size=32, optimizer="adamw", lr=0.01), tmp_path,
                          on_epoch=rows.append)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert final["val_accuracy"] > 0.9 and final["test_accuracy"] > 0.9 and final["test_images"] == 50
    assert final["val_accuracy"] == max(max(r["val_accuracy"], r["ema_val_accuracy"]) for r in rows) \
        or abs(final["val_accuracy"] - max(max(r["val_accuracy"], r["ema_val_accuracy"]) for r in rows)) < 1e-4
    header = (tmp_path / METRICS).read_text().splitlines()[0]
    assert header == "epoch,loss,val_accuracy,ema_val_accuracy,lr,images_per_second,seconds"
    for name in (LAST, PREVIOUS, BEST):
        state = torch.load(tmp_path / name, weights_only=True)  # loads with weights only: no code runs
        assert state["spec_hash"] == architecture_hash(TINY) and state["format"] == "nas-train-checkpoint/1"
    assert load_checkpoint(tmp_path / LAST)["epoch"] == 4 and load_checkpoint(tmp_path / PREVIOUS)["epoch"] == 3
    assert load_checkpoint(tmp_path / BEST)["epoch"] == final["best_epoch"]


def test_a_resumed_run_ends_exactly_where_the_uninterrupted_one_does(tmp_path):
    data = separable(200)
    recipe = TrainRecipe(epochs=3, batch_size=32, optimizer="sgd", lr=0.05)
    whole, part = tmp_path / "whole", tmp_path / "part"
    whole.mkdir(), part.mkdir()
    train_network(TINY, data, recipe, whole)

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt  # as Ctrl-C (or kill -9) right after the second epoch's checkpoint

    with pytest.raises(KeyboardInterrupt):
        train_network(TINY, data, recipe, part, on_epoch=stop_after_two)
    with open(part / METRICS, "a") as handle:  # a row written just before a kill lost its epoch's checkpoint
        handle.write("3,9.9,0.1,0.1,0.01,100,1\n")
    train_network(TINY, data, recipe, part, resume=load_checkpoint(part / LAST))
    rows = [line.split(",") for line in (part / METRICS).read_text().splitlines()]
    assert [row[0] for row in rows] == ["epoch", "1", "2", "3"]
    assert "9.9" not in [row[1] for row in rows]  # the stale row's loss is gone (its epoch retrained and rewritten)
    a, b = load_checkpoint(whole / LAST), load_checkpoint(part / LAST)
    assert a["epoch"] == b["epoch"] == 3
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["ema"]:
        assert torch.equal(a["ema"][key], b["ema"][key]), key


def test_a_corrupt_last_checkpoint_falls_back_to_the_previous_one(tmp_path):
    save_checkpoint(tmp_path, {"epoch": 1}, best=True)
    save_checkpoint(tmp_path, {"epoch": 2}, best=False)
    assert load_checkpoint(tmp_path / BEST)["epoch"] == 1
    (tmp_path / LAST).write_bytes((tmp_path / LAST).read_bytes()[:40])  # a disk that lost the end of it
    state, notes = latest_checkpoint(tmp_path)
    assert state["epoch"] == 1 and len(notes) == 1 and "last.pt: not a readable checkpoint" in notes[0]
    assert (tmp_path / "last.pt.corrupt").exists() and (tmp_path / PREVIOUS).exists()
    assert latest_checkpoint(tmp_path / "nothing") == (None, [])


def test_a_crafted_checkpoint_runs_no_code_and_another_architecture_is_named(tmp_path):
    from tests.conftest import WritesAMarker

    marker = tmp_path / "ran"
    torch.save({"format": "nas-train-checkpoint/1", "x": WritesAMarker(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a nas-train checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    state = {"spec_hash": architecture_hash(TINY), "spec_name": "tiny"}
    check_architecture(state, architecture_hash(TINY.replace(name="renamed", resolution=64)), "renamed", "x")
    with pytest.raises(CheckpointError, match=r"holds tiny \(.*\), not other \(.*\): another architecture"):
        check_architecture(state, architecture_hash(TINY, num_classes=7), "other", "--checkpoint x")


def test_a_diverging_loss_stops_with_a_clear_reason(tmp_path):
    from nas.training.full import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="loss became (nan|inf).*lower --lr"):
        train_network(TINY, separable(200), TrainRecipe(epochs=2, batch_size=32, lr=1e6, warmup_epochs=0), tmp_path)


def test_the_ema_follows_the_weights_with_the_warm_up():
    from nas.training.recipe import make_ema

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = make_ema(model, 0.99)
    start = [p.detach().clone() for p in model.parameters()]
    ema.update(model)  # the first update copies
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model(torch.randn(4, 2))  # BatchNorm's counter and statistics move too
    ema.update(model)
    weight = ema_weight(0.99, 1)
    for averaged, first in zip(ema.module.parameters(), start):
        assert torch.allclose(averaged, first + weight, atol=1e-6)
    assert int(ema.module[1].num_batches_tracked) == 1
    assert ema.updates == 2 and isinstance(ema.updates, int)  # counted on the host: no device read per step
