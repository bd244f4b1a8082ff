"""Latency: measuring a network, a lookup table over a (tiny) space end to end, and the table's bad inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nas.latency import tables as latency
from nas.cli.latency_table import main as latency_table_main
from nas.cli.profile import main as profile_main
from search_spaces.spec import load_spec
from search_spaces.mnasnet import MnasNetConfig, MnasNetSpace, Skeleton

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray instance for the commands run in-process

B0 = "search_spaces/references/efficientnet_b0.json"


def tiny_space() -> MnasNetSpace:
    return MnasNetSpace(MnasNetConfig(
        skeleton=Skeleton(channels=[8, 16, 24], layers=[1, 2, 1], strides=[1, 2, 2], stem=8, head=32),
        ops=["dsconv", "mbconv3", "conv"], kernels=[3, 5], se_ratios=[0.0, 0.25], skips=[True, False],
        filter_multipliers=[1.0, 1.5], layer_deltas=[0, 1]))


@pytest.fixture(scope="module")
def tiny_table() -> latency.LatencyTable:
    return latency.build_table(tiny_space(), resolution=16, num_classes=5, min_run_time=0.001)


def test_table_covers_every_network_of_its_space(tiny_table):
    space, rng = tiny_space(), np.random.default_rng(0)
    assert len(tiny_table.entries) == len(latency.space_parts(space, 16, 5))
    for _ in range(50):
        spec = space.decode(space.sample(rng), resolution=16, num_classes=5)
        parts = list(latency.network_parts(spec))
        assert len(parts) == spec.num_layers + 2  # stem, every layer, head
        predicted = tiny_table.predict(spec)
        assert predicted == pytest.approx(tiny_table.scale * sum(tiny_table.entries[p.key]["median_ms"] for p in parts))
        assert predicted > 0


def test_prediction_follows_the_measured_cost(tiny_table):
    """More layers of the same kind cost more, in the table's sum and in a measurement of the network."""
    space = tiny_space()
    small = space.decode([0] * len(space.sizes), resolution=16, num_classes=5)
    large_choices = [0] * len(space.sizes)
    for b in range(space.num_blocks):
        large_choices[6 * b] = 1  # mbconv3
        large_choices[6 * b + 1] = 1  # kernel 5
        large_choices[6 * b + 4] = 1  # 1.5x filters
        large_choices[6 * b + 5] = 1  # one more layer
    large = space.decode(large_choices, resolution=16, num_classes=5)
    measured = {name: min(latency.measure_spec(spec, min_run_time=0.1).median_ms for _ in range(3))  # the least
                for name, spec in (("small", small), ("large", large))}  # disturbed of three medians
    assert measured["large"] > 1.3 * measured["small"], measured
    assert tiny_table.predict(large) > 1.3 * tiny_table.predict(small)
    for name, spec in (("small", small), ("large", large)):  # the table's sum is the network's time
        assert measured[name] / 2 < tiny_table.predict(spec) < measured[name] * 2, (name, measured)


def test_a_layer_outside_the_table_is_named(tiny_table):
    spec = load_spec(B0).replace(resolution=16, num_classes=5)
    with pytest.raises(latency.LatencyError, match="no entry for layer stem_o32"):
        tiny_table.predict(spec)
    with pytest.raises(latency.LatencyError, match="built for 16px"):
        tiny_table.predict(spec.replace(resolution=32))
    missing = tiny_table.missing([spec])
    assert missing and all(p.key not in tiny_table.entries for p in missing)


def test_table_round_trip_and_its_checks(tiny_table, tmp_path):
    path = tmp_path / "table.json"
    tiny_table.save(path)
    again = latency.load_table(path, tiny_space())
    assert again.entries == tiny_table.entries and again.device == tiny_table.device
    assert again.matches(latency.describe_device("cpu", 1, 1))
    assert not again.matches(latency.describe_device("cpu", 2, 1))
    with pytest.raises(latency.LatencyError, match="another search space"):
        latency.load_table(path, MnasNetSpace())
    data = json.loads(path.read_text())
    for broken, message in ((dict(data, format="nas-latency-table/0"), "format"),
                            ({k: v for k, v in data.items() if k != "entries"}, "malformed"),
                            (dict(data, entries={"x": {"median_ms": -1}}), "positive"),
                            (dict(data, entries={k: {"median_ms": float("inf")} for k in data["entries"]}),
                             "positive, finite"),
                            ([1, 2], "format")):
        path.write_text(json.dumps(broken))
        with pytest.raises(latency.LatencyError, match=message):
            latency.load_table(path)
    path.write_text("{not json")
    with pytest.raises(latency.LatencyError, match="not a readable JSON"):
        latency.load_table(path)
    with pytest.raises(latency.LatencyError, match="no such file"):
        latency.load_table(tmp_path / "missing.json")


def test_the_command_writes_a_table_that_covers_its_space(tiny_table, tmp_path, capsys):
    """nas-latency-table run to its end on a space file: the table has every layer the space can build, each
    measured, and is the one nas-search and nas-profile load for that space."""
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(tiny_space().config.to_file()))
    out = tmp_path / "table.json"
    assert latency_table_main(["--out", str(out), "--space", str(space_file), "--resolution", "16",
                               "--num-classes", "5", "--min-run-time", "0.001"]) == 0
    table = latency.load_table(out, tiny_space())
    assert set(table.entries) == set(tiny_table.entries)  # the library's table of the same space
    assert all(e["median_ms"] > 0 for e in table.entries.values())
    spec = tiny_space().decode([1] * len(tiny_space().sizes), resolution=16, num_classes=5)
    assert table.predict(spec) > 0 and not table.missing([spec])
    assert str(out) in capsys.readouterr().out


@pytest.mark.parametrize("text, ms", [("20ms", 20.0), ("20", 20.0), ("0.02s", 20.0), ("1500us", 1.5)])
def test_parse_latency(text, ms):
    assert latency.parse_latency(text) == pytest.approx(ms)


@pytest.mark.parametrize("text, said", [("0", "'0': a latency target must be positive and finite"),
                                        ("-5ms", "'-5ms': a latency target must be positive"),
                                        ("fast", r"'fast' is not a latency \(e.g. 20ms"),
                                        ("inf", "'inf': a latency target must be positive and finite")])
def test_parse_latency_refuses(text, said):
    with pytest.raises(ValueError, match=said):
        latency.parse_latency(text)


def test_profile_measures_and_predicts(tiny_table, tmp_path, capsys):
    space = tiny_space()
    spec = space.decode([1] * len(space.sizes), resolution=16, num_classes=5)
    spec_path, table_path = tmp_path / "spec.json", tmp_path / "table.json"
    spec_path.write_text(json.dumps(spec.to_dict()))
    tiny_table.save(table_path)
    assert profile_main([str(spec_path), "--json", "--latency", "--latency-table", str(table_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["latency"]["device"]["threads"] == 1
    assert out["predicted_latency_ms"] == pytest.approx(tiny_table.predict(spec), abs=1e-3)
    # the figure is a forward pass's time: timed here side by side (batch 1, one thread); a batch of 8, or the
    # build or export counted in, would fall outside the band
    own = _forward_ms(spec)
    assert own / 2 < out["latency"]["median_ms"] < own * 2, (out["latency"], own)


def _forward_ms(spec) -> float:
    """The median time (ms) of one forward pass of ``spec``'s network at batch 1 on one thread, timed plainly."""
    import time

    import torch

    from nas.network.builder import build_model

    model, images = build_model(spec).eval(), torch.rand(1, 3, spec.resolution, spec.resolution)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        with torch.no_grad():
            for _ in range(60):
                start = time.perf_counter()
                model(images)
                times.append((time.perf_counter() - start) * 1000)
    finally:
        torch.set_num_threads(threads)
    return float(np.median(times[10:]))


@pytest.fixture(scope="module")
def tiny_onnx_table() -> latency.LatencyTable:
    return latency.build_table(tiny_space(), resolution=16, num_classes=5, min_run_time=0.001,
                               runtime="onnxruntime", calibration_networks=1)


def _onnx_ms(spec, folder) -> float:
    """The median time (ms) of one run of ``spec``'s network in onnxruntime (one thread, batch 1): the file
    nas-export would write, timed plainly (as test_nas_train times an exported file)."""
    from nas.export.onnx import export_onnx
    from nas.network.builder import build_model
    from tests.test_nas_train import _onnx_forward_ms

    path = folder / "net.onnx"
    export_onnx(build_model(spec).eval(), spec.resolution, path)
    return _onnx_forward_ms(path, spec.resolution)


def test_an_onnxruntime_table_predicts_onnxruntime_not_pytorch(tiny_onnx_table, tiny_table, tmp_path, capsys):
    """Each layer timed in onnxruntime: the table says so, covers the space, and predicts the whole network as
    onnxruntime runs it (timed here plainly, side by side), which PyTorch eager runs several times slower at
    this size; nas-profile --runtime onnxruntime measures the same."""
    assert tiny_onnx_table.device["runtime"] == "onnxruntime" and "onnxruntime" in tiny_onnx_table.device
    assert set(tiny_onnx_table.entries) == set(tiny_table.entries)
    assert tiny_onnx_table.matches(latency.describe_device("cpu", 1, 1, "onnxruntime"))
    assert not tiny_onnx_table.matches(latency.describe_device("cpu", 1, 1))  # an eager measurement is not it
    assert not tiny_table.matches(latency.describe_device("cpu", 1, 1, "onnxruntime"))
    space = tiny_space()
    spec = space.decode([1] * len(space.sizes), resolution=16, num_classes=5)
    plain, eager = _onnx_ms(spec, tmp_path), _forward_ms(spec)
    assert plain / 2 < tiny_onnx_table.predict(spec) < plain * 2, (tiny_onnx_table.predict(spec), plain)
    assert eager > 3 * plain  # the two runtimes differ: a table of one does not serve the other
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec.to_dict()))
    assert profile_main([str(spec_path), "--json", "--latency", "--runtime", "onnxruntime"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["latency"]["device"]["runtime"] == "onnxruntime"
    assert plain / 2 < out["latency"]["median_ms"] < plain * 2, (out["latency"], plain)
    assert profile_main([str(spec_path), "--latency", "--runtime", "onnxruntime", "--device", "cuda"]) == 2
    assert "--runtime onnxruntime: measured on the CPU" in capsys.readouterr().err


@pytest.mark.slow
def test_the_command_writes_an_onnxruntime_table(tiny_onnx_table, tmp_path, capsys):
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(tiny_space().config.to_file()))
    out = tmp_path / "ort.json"
    assert latency_table_main(["--out", str(out), "--space", str(space_file), "--resolution", "16",
                               "--num-classes", "5", "--min-run-time", "0.001", "--runtime", "onnxruntime"]) == 0
    assert "in onnxruntime" in capsys.readouterr().out
    table = latency.load_table(out, tiny_space())
    assert set(table.entries) == set(tiny_onnx_table.entries) and table.device["runtime"] == "onnxruntime"


@pytest.mark.parametrize("argv, message", [
    (["--out", "{tmp}/t.json", "--threads", "0"], "--threads"),
    (["--out", "{tmp}/t.json", "--resolution", "4"], "too small"),
    (["--out", "{tmp}/file/t.json"], "cannot write"),
    (["--out", "{tmp}"], "is a directory; give the table's file name"),  # before measuring, not after
    (["--out", "{tmp}/t.json", "--threads", "4096"], "--threads 4096: this machine has"),
    (["--out", "{tmp}/t.json", "--batch-size", "10000"], "--batch-size 10000 at 224px: one input batch takes 5.6 GiB"),
])
def test_latency_table_bad_arguments(argv, message, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert latency_table_main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_profile_refuses_a_measurement_that_cannot_mean_anything(capsys):
    assert profile_main([B0, "--method", "analytic", "--latency", "--batch-size", "5000", "--resolution", "512"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--batch-size 5000 at 512px: one input batch takes 14.6 GiB" in err


def test_profile_refuses_a_bad_table(tmp_path, capsys):
    (tmp_path / "t.json").write_text("[]")
    assert profile_main([B0, "--method", "analytic", "--latency-table", str(tmp_path / "t.json")]) == 2
    assert "latency table" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- search with latency
@pytest.fixture(scope="module")
def space_table_64(tmp_path_factory):
    """The tiny space's table at 64 px on this machine (brief timings: enough to predict consistently), and
    the space's file beside it for nas-search --space."""
    folder = tmp_path_factory.mktemp("latency")
    (folder / "space.json").write_text(json.dumps(tiny_space().config.to_file()))
    path = folder / "table_64.json"
    latency.build_table(tiny_space(), 64, 1000, min_run_time=0.001).save(path)
    return path


def test_a_search_with_a_latency_target_scores_predicted_latency(space_table_64, tmp_path, capsys):
    import pandas as pd

    from nas.cli.search import main as search_main
    from nas.search.reward import mnas_reward
    out = tmp_path / "run"
    space_file = space_table_64.parent / "space.json"
    argv = ["--data", "synthetic:classes=3,images=1000", "--proxy-resolution", "16", "--steps", "2", "--batch-size",
            "16", "--resolution", "64", "--space", str(space_file), "--cpus-per-trial", "1", "--flops-window", "0,inf",
            "--trials", "3",
            "--controller", "random", "--scheduler", "none", "--target-flops", "5M", "--target-latency", "3ms",
            "--latency-table", str(space_table_64), "--out", str(out)]
    assert search_main(argv) == 0
    printed = capsys.readouterr().out
    assert "target 5M FLOPs at 64px and 3 ms latency (predicted)" in printed and " ms  acc " in printed
    table = latency.load_table(space_table_64)
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 3 and (trials.status == "ok").all()
    for row in trials.itertuples():
        spec = tiny_space().decode(json.loads(row.choices), resolution=64, num_classes=3)
        assert row.latency_ms == pytest.approx(table.predict(spec), abs=1e-3)
        both = mnas_reward(mnas_reward(row.accuracy, row.flops, 5e6), row.latency_ms, 3.0)
        assert row.reward == pytest.approx(both, rel=1e-6)
    best = load_spec(out / "best_b0.json")
    assert best.metrics["predicted_latency_ms"] == pytest.approx(trials.latency_ms[trials.reward.idxmax()])
    assert best.metrics["measured_latency_ms"] > 0  # the table was measured on this machine: measured afresh
    assert best.metrics["latency_device"]["kind"] == "cpu" and best.provenance["target_latency_ms"] == 3.0
    assert (out / "pareto.png").is_file()


def test_latency_alone_is_a_target_and_screens(space_table_64, tmp_path):
    from nas.search.config import SearchConfig

    config = SearchConfig.of(target_flops=None, out=str(tmp_path), target_latency_ms=10.0,
                          latency_table=str(space_table_64))
    assert config.objective.score(0.5, 0, 10.0) == pytest.approx(0.5)  # FLOPs do not count without a FLOPs target
    assert config.objective.score(0.5, 4e8, 20.0) == pytest.approx(0.5 * 2 ** -0.07)
    assert config.objective.score(0.5, 4e8, 0.0) == 0.0  # no prediction: no reward
    assert config.objective.screens(4e8, 20.0) and not config.objective.screens(4e8, 10.0)
    assert config.objective.describe_target() == "10 ms latency (predicted)"


@pytest.mark.parametrize("extra, message", [
    (["--target-latency", "0"], "must be positive"),
    (["--target-latency", "20ms"], "needs a latency table"),
    (["--target-latency", "20ms", "--latency-table", "{tmp}/missing.json"], "no such file"),
    (["--target-latency", "20ms", "--latency-table", "{table}", "--resolution", "96"], "built for 64px"),
    (["--target-latency", "20ms", "--latency-table", "{table}", "--latency-device", "cpu"], "give one of them"),
])
def test_bad_latency_arguments_exit_2(extra, message, space_table_64, tmp_path, capsys):
    from nas.cli.search import main as search_main

    argv = ["--out", str(tmp_path / "run"), "--resolution", "64", "--space", str(space_table_64.parent / "space.json")] + [
        a.format(tmp=tmp_path, table=space_table_64) for a in extra]
    assert search_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_an_unreachable_latency_target_is_warned_about_with_the_range(space_table_64):
    """0.02 typed for 20 ms (a bare number is milliseconds): every network is screened out; the user is told."""
    from nas.search.config import SearchConfig
    from nas.search.driver import latency_target_warning
    space, table = tiny_space(), latency.load_table(space_table_64)
    predicted = table.predict(space.decode(space.sample(np.random.default_rng(1)), resolution=64, num_classes=1000))
    config = SearchConfig.of(target_flops=None, target_latency_ms=predicted, latency_table=str(space_table_64),
                          resolution=64, out="x")
    assert latency_target_warning(config, space, 1000, table) is None
    config = SearchConfig.of(target_flops=None, target_latency_ms=predicted / 1000, latency_table=str(space_table_64),
                          resolution=64, out="x")
    warning = latency_target_warning(config, space, 1000, table)
    assert "below the fastest network" in warning and "did you mean" in warning


def test_the_table_of_a_downsampling_space_covers_every_stride_and_size():
    """Searched strides change the sizes every later block sees: the table's parts still cover any network."""
    import numpy as np

    space = MnasNetSpace(MnasNetConfig(reduction_strides=[2, 1]))
    keys = {part.key for part in latency.space_parts(space, 32, 10)}
    rng = np.random.default_rng(5)
    for _ in range(100):
        spec = space.decode(space.sample(rng), resolution=32, num_classes=10)
        assert all(part.key in keys for part in latency.network_parts(spec))
    assert any("_s1_" in key for key in keys) and any(key.startswith("stem_o32_swish@32") for key in keys)
