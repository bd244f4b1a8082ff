"""nas-train on Ray Train (one Ray instance for the module: 2 CPUs) and nas-export of what it trained."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from nas.cli.export import main as export_main
from nas.cli.train import main as train_main
from nas.files import save_spec
from nas.network.counting import profile
from tests.test_full_training import TINY


@pytest.fixture(scope="module")
def ray_instance(shared_ray):
    """The test run's one Ray instance (conftest.shared_ray)."""
    yield


def _npz_with_test(path, n=320, n_test=60, seed=0):
    """An .npz whose classes differ by their dominant colour channel, with x_test/y_test."""
    rng = np.random.default_rng(seed)

    def images(count):
        y = rng.integers(0, 3, count)
        x = rng.uniform(0, 80, (count, 16, 16, 3)).astype(np.uint8)
        x[np.arange(count), :, :, y] += 150
        return x, y

    (x, y), (xt, yt) = images(n), images(n_test)
    np.savez(path, x=x, y=y, x_test=xt, y_test=yt)
    return f"npz:{path}"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, ray_instance):
    """One nas-train run of a tiny network on 1 worker: its spec, data and run directory."""
    root = tmp_path_factory.mktemp("train")
    spec_path = save_spec(TINY, root / "tiny.json")
    data = _npz_with_test(root / "d.npz")
    out = root / "run"
    code = train_main([str(spec_path), "--data", data, "--epochs", "3", "--batch-size", "32", "--optimizer", "adamw",
                       "--lr", "0.01", "--out", str(out)])
    assert code == 0
    return spec_path, data, out


def test_a_run_writes_its_records_and_judges_the_network_on_the_test_split(trained_run):
    _, _, out = trained_run
    for name in ("train.json", "spec.json", "metrics.csv", "curves.png", "last.pt", "previous.pt", "best.pt",
                 "result.json", "report.html"):
        assert (out / name).is_file(), name
    page = (out / "report.html").read_text()  # the finished run's page: its accuracies, curves and network
    assert "(finished)" not in page and "<dt>status</dt><dd>finished</dd>" in page
    assert "test accuracy" in page and page.count('class="series"') >= 3 and 'class="network"' in page
    assert 'http-equiv="refresh"' not in page  # finished: the page no longer reloads itself
    result = json.loads((out / "result.json").read_text())
    assert result["test_images"] == 60 and result["test_accuracy"] > 0.8 and result["val_accuracy"] > 0.8
    timing = pd.read_csv(out / "timings.csv")  # the training's wall time: at least its epochs'
    assert list(timing["stage"]) == ["training"] and list(timing["status"]) == ["finished"]
    assert timing.loc[0, "seconds"] >= pd.read_csv(out / "metrics.csv")["seconds"].sum()
    counted = profile(TINY.replace(num_classes=3), 16)  # fvcore at the training resolution, the classes of the data
    assert (result["flops"], result["params"]) == (counted["flops"], counted["params"])
    assert result["recipe"]["optimizer"] == "adamw"
    assert len(result["spec_hash"]) == 64 and "torch" in result["versions"]
    assert len((out / "metrics.csv").read_text().splitlines()) == 4
    state = torch.load(out / "best.pt", weights_only=True)
    assert set(state) >= {"model", "ema", "optimizer", "schedule", "epoch", "spec", "recipe"}


def test_a_finished_run_is_not_overwritten_and_resume_keeps_its_recipe(trained_run, capsys):
    spec_path, data, out = trained_run
    assert train_main([str(spec_path), "--data", data, "--out", str(out)]) == 2
    assert "already holds a nas-train run" in capsys.readouterr().err
    assert train_main(["--resume", "--out", str(out), "--lr", "0.5"]) == 2
    assert "--lr differs" in capsys.readouterr().err
    other = save_spec(TINY.replace(head_channels=32), out.parent / "other.json")
    assert train_main([str(other), "--resume", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "another architecture" in err and "warning" not in err and err.count("\n") == 1  # before the data
    # a finished run resumes to the same end: nothing left to train, the result is written again
    assert train_main(["--resume", "--out", str(out)]) == 0
    assert "resuming after epoch 3 of 3" in capsys.readouterr().out
    # flags at the values the run takes effect with are not changes: the spec's own resolution (saved as None)
    assert train_main(["--resume", "--out", str(out), "--resolution", "16", "--data", data, "--epochs", "3"]) == 0
    assert train_main(["--resume", "--out", str(out), "--resolution", "24"]) == 2
    assert "continues with the run's own --resolution (16)" in capsys.readouterr().err


@pytest.mark.slow  # a fault case: a checkpoint lost, resumed through Ray Train
def test_a_run_that_lost_its_best_checkpoint_resumes_with_the_last_one_standing_in(trained_run, tmp_path, capsys):
    """Before: --resume failed at the very end (best.pt: no such checkpoint) and a new run there was refused."""
    import shutil

    _, _, out = trained_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "best.pt").unlink()
    capsys.readouterr()
    assert train_main(["--resume", "--out", str(copy)]) == 0
    err = capsys.readouterr().err
    assert "best.pt: no such checkpoint: the weights of the best epoch" in err and "epoch 3's weights stand in" in err
    result = json.loads((copy / "result.json").read_text())
    assert result["best_epoch"] == 3 and (copy / "best.pt").is_file()
    assert result["test_accuracy"] == pytest.approx(result[f"last_{'ema_' if result['best_weights'] == 'ema' else ''}"
                                                           f"test_accuracy"])


def test_more_workers_than_the_cluster_holds_is_one_line(trained_run, capsys):
    spec_path, data, out = trained_run
    code = train_main([str(spec_path), "--data", data, "--workers", "4", "--cpus-per-worker", "1", "--batch-size",
                       "32", "--out", str(out.parent / "too-many")])
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning: ")]
    assert code == 2 and len(lines) == 1 and "--workers 4: the Ray cluster has room for 2 workers" in lines[0]


def test_two_gloo_workers_train_with_ddp(trained_run, tmp_path):
    spec_path, data, _ = trained_run
    out = tmp_path / "two"
    assert train_main([str(spec_path), "--data", data, "--epochs", "2", "--batch-size", "32", "--optimizer",
                       "adamw", "--lr", "0.01", "--workers", "2", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["workers"] == 2 and result["val_accuracy"] > 0.6
    assert result["replica_drift"] == 0.0  # both workers ended with the very same weights: DDP kept them in step


def test_export_onnx_and_torchscript_match_pytorch(trained_run, tmp_path, capsys):
    import onnxruntime as ort

    _, _, out = trained_run
    onnx_file, script_file = tmp_path / "tiny.onnx", tmp_path / "tiny.ts"
    assert export_main([str(out), "--onnx", str(onnx_file), "--torchscript", str(script_file)]) == 0
    printed = capsys.readouterr().out
    assert "weights of epoch" in printed and "max abs difference" in printed
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    for batch in (1, 7):  # the batch is dynamic
        logits = session.run(None, {"images": np.random.rand(batch, 3, 16, 16).astype(np.float32)})[0]
        assert logits.shape == (batch, 3)
    # the exported network predicts as the trained one: the test images, scaled to [0, 1]
    archive = np.load(str(out.parent / "d.npz"))
    images = archive["x_test"].transpose(0, 3, 1, 2).astype(np.float32) / 255
    accuracy = float((session.run(None, {"images": images})[0].argmax(1) == archive["y_test"]).mean())
    result = json.loads((out / "result.json").read_text())
    assert accuracy == pytest.approx(result["test_accuracy"], abs=0.02)


def test_export_refuses_another_architecture_and_warns_without_weights(trained_run, tmp_path, capsys):
    _, _, out = trained_run
    other = save_spec(TINY.replace(head_channels=32), tmp_path / "other.json")
    assert export_main([str(other), "--checkpoint", str(out / "best.pt"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert "another architecture" in err and err.count("\n") == 1
    assert export_main([str(other), "--torchscript", str(tmp_path / "x.ts")]) == 0
    assert "warning: no --checkpoint: exporting random weights" in capsys.readouterr().err
    assert export_main([str(other)]) == 2
    assert "nothing to write" in capsys.readouterr().err


def _onnx_forward_ms(path, resolution: int) -> float:
    """The median time (ms) of one onnxruntime run of ``path`` at batch 1 on one thread, timed plainly."""
    import time

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.rand(1, 3, resolution, resolution).astype(np.float32)}
    times = []
    for _ in range(200):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times[20:]))


def test_nas_profile_times_an_onnx_file(trained_run, tmp_path, capsys):
    from nas.cli.profile import main as profile_main

    _, _, out = trained_run
    onnx_file = tmp_path / "m.onnx"
    assert export_main([str(out), "--onnx", str(onnx_file)]) == 0
    capsys.readouterr()
    assert profile_main([str(onnx_file), "--latency", "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["runtime"] == "onnxruntime" and measured["resolution"] == 16
    own = _onnx_forward_ms(onnx_file, 16)  # the same file timed here side by side, in the same runtime
    assert own / 2 < measured["latency"]["median_ms"] < own * 2, (measured["latency"], own)
    assert profile_main([str(onnx_file)]) == 2
    assert "give --latency" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_loses_at_most_one_epoch(tmp_path):
    spec_path = save_spec(TINY, tmp_path / "tiny.json")
    data = _npz_with_test(tmp_path / "d.npz", n=1200)
    out = tmp_path / "run"
    command = [sys.executable, "-c", "from nas.cli.train import main; raise SystemExit(main())", str(spec_path),
               "--data", data, "--epochs", "6", "--batch-size", "32", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    for line in process.stdout:
        if line.startswith("epoch 2/6"):
            break
    import os
    import signal

    os.killpg(process.pid, signal.SIGKILL)  # the driver and its Ray workers, as a lost machine would
    process.wait()
    done = len((out / "metrics.csv").read_text().splitlines()) - 1
    assert done >= 2
    resumed = subprocess.run([sys.executable, "-c", "from nas.cli.train import main; raise SystemExit(main())",
                              "--resume", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stdout
    epochs = [int(line.split(",")[0]) for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert epochs == [1, 2, 3, 4, 5, 6]


def test_an_op_the_exporter_cannot_take_is_one_line(tmp_path, capsys, monkeypatch):
    def refuses(*args, **kwargs):
        raise RuntimeError("Unsupported: aten::some_new_op has no ONNX translation\nlong details...")

    monkeypatch.setattr(torch.onnx, "export", refuses)  # the exporter's failure, as torch raises it
    spec = save_spec(TINY, tmp_path / "tiny.json")
    assert export_main([str(spec), "--onnx", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("nas-export: error: the ONNX exporter cannot take this network (RuntimeError: Unsupported: "
                       "aten::some_new_op has no ONNX translation)")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.slow
def test_sigterm_stops_a_run_with_one_line_and_the_resume_command(tmp_path):
    """As ``timeout`` or a scheduler stops it, and with SIGINT ignored (a background job of a script)."""
    import signal

    spec_path = save_spec(TINY, tmp_path / "tiny.json")
    data = _npz_with_test(tmp_path / "d.npz", n=1200)
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", "from nas.cli.train import main; raise SystemExit(main())",
                                str(spec_path), "--data", data, "--epochs", "30", "--batch-size", "32", "--out",
                                str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("epoch 1/30"):
            process.send_signal(signal.SIGTERM)
            break
    lines += process.stdout.readlines()
    assert process.wait(timeout=120) == 143
    text = "".join(lines)
    assert f"stopped; continue with: nas-train --resume --out {out}" in text
    assert "nas-train: terminated (SIGTERM); finished work is kept" in text and "Traceback" not in text
    assert (out / "last.pt").is_file()


def test_export_refuses_a_directory_and_a_resolution_too_large_to_trace(tmp_path, capsys):
    spec = save_spec(TINY, tmp_path / "tiny.json")
    assert export_main([str(spec), "--onnx", str(tmp_path)]) == 2
    assert "a directory; give the file to write" in capsys.readouterr().err
    b0 = "search_spaces/references/efficientnet_b0.json"
    assert export_main([b0, "--onnx", str(tmp_path / "b0.onnx"), "--resolution", "20000"]) == 2
    err = capsys.readouterr().err
    assert "3,168G FLOPs at 20000 px: too large to run here (at most 200G)" in err and not (tmp_path / "b0.onnx").exists()


def test_the_held_out_split_is_the_datas_not_the_training_seeds(tmp_path):
    """Another --seed trains on the same images and is judged on the same held-out ones; --split-seed picks
    another split; a train.json from before split_seed keeps the split it was trained with (its seed's)."""
    import json

    from nas.retrain.config import TrainSettings, default_split_seed
    from nas.retrain.driver import _load_data
    from nas.training.recipe import TrainRecipe

    def held_out(**values):
        splits = _load_data(TrainSettings(spec="x", data=data, **values), 16)
        return splits.x_val.tobytes(), splits.y_val.tolist()

    data = _npz_with_test(tmp_path / "images.npz", n=100, n_test=10)
    first = held_out(recipe=TrainRecipe(seed=1, batch_size=4))
    assert held_out(recipe=TrainRecipe(seed=2, batch_size=4)) == first
    assert held_out(recipe=TrainRecipe(seed=1, batch_size=4), split_seed=5) != first
    old = TrainSettings(spec="x", recipe=TrainRecipe(seed=7)).to_dict()
    del old["split_seed"]
    assert TrainSettings.from_dict(json.loads(json.dumps(old))).split_seed == 7
    assert default_split_seed(str(tmp_path)) == 0  # not a nas-search run
