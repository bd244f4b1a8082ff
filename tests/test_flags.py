"""Flags run end to end through the real commands at small settings, each checked for what it changes (and that
it is recorded): the flags no other test ran to a result."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from nas.cli.latency_table import main as latency_table_main
from nas.cli.profile import main as profile_main
from nas.cli.proxy_check import main as proxy_check_main
from nas.cli.scale import main as scale_main
from nas.cli.search import main as search_main
from nas.latency import tables
from nas.network.counting import profile
from search_spaces.mnasnet import MnasNetConfig, MnasNetSpace, Skeleton
from search_spaces.spec import load_spec

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray instance for the commands run in-process

DATA = "synthetic:classes=3,images=1000"  # 800 training and 200 held-out images
SMALL = ["--data", DATA, "--proxy-resolution", "16", "--batch-size", "16", "--cpus-per-trial", "1",
         "--scheduler", "none", "--no-cache"]


def mini_space() -> MnasNetSpace:
    """A space of a few dozen layers: its latency table is measured in seconds."""
    return MnasNetSpace(MnasNetConfig(
        skeleton=Skeleton(channels=[8, 16], layers=[1, 1], strides=[1, 2], stem=8, head=32),
        ops=["dsconv", "mbconv3"], kernels=[3, 5], se_ratios=[0.0], skips=[True], filter_multipliers=[1.0],
        layer_deltas=[0, 1]))


@pytest.mark.slow  # a whole command run: CI stays within 12 minutes (issue 55)
def test_a_latency_target_alone_on_this_machines_table_with_the_proxy_flags(tmp_path, private_cache_dir, capsys):
    """--target-latency alone with --latency-device cpu (the table built once, in the cache directory), REINFORCE,
    --epochs instead of steps, --optimizer, --seed, --num-classes and --gpus-per-trial 0, in one search."""
    space_file = tmp_path / "mini.json"
    space_file.write_text(json.dumps(mini_space().config.to_file()))
    out = tmp_path / "run"
    argv = [*SMALL, "--space", str(space_file), "--resolution", "16", "--target-latency", "1ms", "--flops-window", "0,inf",
            "--latency-device", "cpu", "--controller", "reinforce", "--epochs", "0.1", "--optimizer", "sgd",
            "--seed", "5", "--num-classes", "7", "--gpus-per-trial", "0", "--trials", "3", "--out", str(out)]
    assert search_main(argv) == 0
    printed = capsys.readouterr().out
    table_files = list((private_cache_dir / "latency").glob("cpu-16px-*.json"))
    assert len(table_files) == 1 and "building the latency table of this machine" in printed
    assert "target 1 ms latency (predicted)" in printed and "FLOPs at" not in printed.split("target", 1)[1][:40]
    assert "synthetic:classes=3,images=1000,seed=5: 800 train / 200 val images" in printed  # --seed splits the data
    assert "1 CPU + 0 GPU each" in printed
    config = json.loads((out / "search.json").read_text())["config"]
    assert config["latency_table"] == str(table_files[0]) and config["target_flops"] is None
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 3 and (trials["status"] == "ok").all()
    assert set(trials["steps"]) == {5}  # --epochs 0.1 of 800 images at batch 16
    table = tables.load_table(table_files[0], mini_space())
    space = mini_space()
    for row in trials.itertuples():  # scored by the table's prediction, with no FLOPs term
        spec = space.decode(json.loads(row.choices), resolution=16, num_classes=7)
        assert row.latency_ms == pytest.approx(table.predict(spec), abs=1e-3)
        assert row.reward == pytest.approx(row.accuracy * (row.latency_ms / 1.0) ** -0.07, rel=1e-6)
    best = load_spec(out / "best_b0.json")
    assert best.num_classes == 7 and best.metrics["flops"] == profile(best)["flops"]  # counted with 7 classes
    budget = best.provenance["budget"]
    assert budget["optimizer"] == "sgd" and budget["epochs"] == 0.1 and best.provenance["seed"] == 5
    state = torch.load(out / "controller.pt", weights_only=True)["controller"]
    assert state["name"] == "reinforce" and state["num_told"] >= 3
    # the same search again finds the machine's table in the cache: not built twice
    assert search_main([*argv[:-1], str(tmp_path / "again")]) == 0
    assert "building the latency table" not in capsys.readouterr().out


def test_the_seed_changes_the_held_out_split():
    from nas.data.datasets import load_data

    first, again, other = (load_data(f"{DATA},seed={s}", 16) for s in (0, 0, 5))
    assert np.array_equal(first.y_val, again.y_val) and np.array_equal(first.x_val, again.x_val)
    assert not np.array_equal(first.x_val, other.x_val)


@pytest.fixture(scope="module")
def levels_run(tmp_path_factory):
    """A search of the downsampling space from --start-from levels with the default controller (the predictor)
    for 12 candidates: past its warm-up of 10."""
    out = tmp_path_factory.mktemp("levels") / "run"
    assert search_main([*SMALL, "--steps", "2", "--resolution", "32", "--space", "downsampling", "--target-flops",
                        "b0", "--start-from", "levels", "--trials", "12", "--concurrency", "1",
                        "--out", str(out)]) == 0
    return out


@pytest.mark.slow  # a whole command run: CI stays within 12 minutes (issue 55)
def test_start_from_levels_then_the_predictor_past_its_warm_up(levels_run):
    from nas.search.start_points import resolve_start_points
    from nas.search.run import open_run

    run = open_run(levels_run)
    trials = pd.read_csv(levels_run / "trials.csv").sort_values("trial")
    starts = resolve_start_points(["levels"], run.space, run.config.sizing(3))
    assert len(starts) >= 3  # B0 at each downsampling level, sized to the target
    first = [json.loads(c) for c in trials["choices"].head(len(starts))]
    assert first == [choices for _, choices in starts]  # trained first, in order
    downsampling = {run.decode(c, "x").downsampling for c in first}
    assert len(downsampling) == len(starts)  # one per level
    state = torch.load(levels_run / "controller.pt", weights_only=True)["controller"]
    assert state["name"] == "predictor" and state["options"]["warmup"] == 10
    assert len(state["observed"]) >= 12 and state["num_asked"] > 10 - len(starts)  # it proposed from its model


@pytest.mark.slow  # a whole command run: CI stays within 12 minutes (issue 55)
def test_proxy_check_from_a_run_with_its_own_width_epochs_and_reference_resolution(levels_run, tmp_path):
    out = tmp_path / "check"
    target = json.loads((levels_run / "search.json").read_text())["config"]["target_flops"]  # B0's, counted
    assert proxy_check_main(["--from", str(levels_run), "--target-flops", str(target), "--resolution", "32",
                             "--data", DATA, "--proxy-resolution", "16", "--batch-size", "16", "--epochs", "0.1",
                             "--proxy-width", "0.5", "--reference-resolution", "24", "--reference-steps", "4",
                             "--models", "4", "--repeats", "1", "--no-references", "--cpus-per-trial", "1",
                             "--no-cache", "--out", str(out)]) == 0
    rows = pd.read_csv(out / "proxy_check.csv")
    proxy, reference = rows[rows["budget"] == "proxy"], rows[rows["budget"] == "reference"]
    assert set(proxy["steps"]) == {5}  # --epochs 0.1 of 800 images at batch 16
    assert set(reference["steps"]) == {4} and set(reference["train_resolution"]) == {24}
    assert set(proxy["train_resolution"]) == {16}
    figures = json.loads((out / "proxy_check.json").read_text())
    assert figures["config"]["from"] == str(levels_run) and figures["config"]["reference_resolution"] == 24
    assert figures["config"]["proxy"]["width"] == 0.5
    # --from: the run's best half of --models 4 by reward (two trained trials), the rest sampled
    trials = pd.read_csv(levels_run / "trials.csv")
    best = trials[trials["status"] == "ok"].sort_values(["reward"], ascending=False)["trial"].head(2)
    assert set(rows[rows["kind"] == "from-run"]["name"]) == {f"trial-{int(t):04d}" for t in best}
    assert len(set(rows["model"])) == 4


def test_nas_scale_grid_search_with_its_training_flags(tmp_path):
    from search_spaces.spec import spec_from_block_strings

    from nas.files import save_spec

    tiny = spec_from_block_strings(["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e6_i16_o24"], stem_channels=16,
                                   head_channels=64, num_classes=3, resolution=64, name="tiny-b0")
    base = save_spec(tiny, tmp_path / "tiny.json")
    out = tmp_path / "scaling"
    assert scale_main([str(base), "--grid-search", "--grid-step", "0.1", "--tolerance", "0.03", "--data", DATA,
                       "--proxy-resolution", "16", "--batch-size", "16", "--epochs", "0.05", "--optimizer", "sgd",
                       "--lr", "0.07", "--proxy-width", "0.5", "--seed", "4", "--out", str(out)]) == 0
    found = json.loads((out / "coefficients.json").read_text())
    budget = found["budget"]
    assert budget["optimizer"] == "sgd" and budget["lr"] == 0.07 and budget["epochs"] == 0.05 and budget["seed"] == 4
    table = pd.read_csv(out / "scaling.csv")
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert found["proxy_width"] == 0.5  # each point trained at half width (its FLOPs counted at full width)


def test_profile_and_latency_table_take_their_device_threads_and_batch(tmp_path, capsys):
    space_file = tmp_path / "mini.json"
    space_file.write_text(json.dumps(mini_space().config.to_file()))
    table_path = tmp_path / "table.json"
    assert latency_table_main(["--out", str(table_path), "--space", str(space_file), "--resolution", "16",
                               "--num-classes", "5", "--min-run-time", "0.001", "--device", "cpu", "--threads", "2",
                               "--batch-size", "3"]) == 0
    table = tables.load_table(table_path, mini_space())
    assert (table.device["kind"], table.device["threads"], table.device["batch_size"]) == ("cpu", 2, 3)
    spec = mini_space().decode([n - 1 for n in mini_space().sizes], resolution=16, num_classes=5)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec.to_dict()))
    capsys.readouterr()
    assert profile_main([str(spec_path), "--json", "--latency", "--device", "cpu", "--threads", "2",
                         "--batch-size", "3", "--latency-table", str(table_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["latency"]["device"]["threads"], out["latency"]["device"]["batch_size"]) == (2, 3)
    assert out["predicted_latency_ms"] == pytest.approx(table.predict(spec), abs=1e-3)  # the same device: used


@pytest.mark.slow  # a whole command run: CI stays within 12 minutes (issue 55)
def test_nas_train_takes_its_recipe_flags_and_nas_export_another_resolution(tmp_path):
    """--weight-decay, --ema-decay, --crop-scale, --seed, --label-smoothing and --warmup-epochs reach the
    training (recorded, and seen in the optimizer, the schedule and the average); nas-export
    --resolution writes a network that takes that size."""
    import onnxruntime

    from nas.cli.export import main as export_main
    from nas.cli.train import main as train_main
    from nas.files import save_spec
    from tests.test_full_training import TINY
    from tests.test_nas_train import _npz_with_test

    spec_path = save_spec(TINY, tmp_path / "tiny.json")
    data = _npz_with_test(tmp_path / "d.npz")
    out = tmp_path / "run"
    assert train_main([str(spec_path), "--data", data, "--epochs", "2", "--batch-size", "32", "--optimizer", "sgd",
                       "--lr", "0.05", "--weight-decay", "0.01", "--ema-decay", "0.5", "--crop-scale", "0.6",
                       "--seed", "3", "--label-smoothing", "0.3", "--warmup-epochs", "1", "--out", str(out)]) == 0
    recipe = json.loads((out / "result.json").read_text())["recipe"]
    assert (recipe["weight_decay"], recipe["ema_decay"], recipe["crop_scale"], recipe["seed"],
            recipe["label_smoothing"], recipe["warmup_epochs"]) == (0.01, 0.5, 0.6, 3, 0.3, 1.0)
    assert json.loads((out / "train.json").read_text())["split_seed"] == 0  # --seed is the training's: not the split
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    decays = {group["weight_decay"] for group in checkpoint["optimizer"]["param_groups"]}
    assert decays == {0.0, 0.01}  # batch norm and biases undecayed, the rest at --weight-decay
    assert checkpoint["ema_updates"] > 0  # the moving average ran
    metrics = pd.read_csv(out / "metrics.csv")
    # 256 training images at batch 32: 8 steps an epoch; warm-up over epoch 1 to the given peak (--lr is taken
    # as given), then cosine to 0
    assert metrics.loc[0, "lr"] == pytest.approx(0.05) and metrics.loc[1, "lr"] == 0
    onnx_file = tmp_path / "m.onnx"
    assert export_main([str(out), "--onnx", str(onnx_file), "--resolution", "24"]) == 0
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    logits = session.run(None, {given.name: np.zeros((1, 3, 24, 24), np.float32)})[0]
    assert logits.shape == (1, 3)
    with pytest.raises(Exception, match="(?i)dimension|shape|index"):  # its input is 24 px, not the training's 16
        session.run(None, {given.name: np.zeros((1, 3, 16, 16), np.float32)})


def test_label_smoothing_changes_the_training_loss():
    """The loss a training minimises is cross-entropy against targets smoothed by the recipe's amount."""
    import torch.nn.functional as F

    from nas.network.builder import build_model
    from nas.training.core import Training
    from nas.training.device_data import DeviceData
    from nas.training.recipe import TrainRecipe
    from tests.test_full_training import TINY

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (64, 16, 16, 3), dtype=np.uint8), rng.integers(0, 3, 64)
    data = DeviceData(x, y, torch.device("cpu"), torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1))
    labels = data.y
    logits = 4.0 * F.one_hot(labels, 3).float()  # a confident network: smoothing costs it a clear amount
    model = build_model(TINY.replace(num_classes=3))
    losses = {amount: Training(model, data, TrainRecipe(steps=1, batch_size=16, label_smoothing=amount),
                               forward=lambda _: logits)._loss(data.to_input(data.x), labels).item()
              for amount in (0.0, 0.3)}
    assert losses[0.0] == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    assert losses[0.3] == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.3).item(), rel=1e-6)
    assert losses[0.3] > losses[0.0] + 0.5
