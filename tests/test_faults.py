"""Faults a user meets: torn and corrupt run files, an address where nothing answers, an --out that is a file.

Each test checks the exact promise: the exit status, one line on stderr, the finished rows kept.
"""
import json
import os
import pickle
import socket
import time

import pandas as pd
import pytest
import torch

from conftest import WritesAMarker
from nas.cli.search import main as search_main
from nas.console import console_output
from nas.errors import UserInputError
from nas.search.run_files import append_trial, repair_trials

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray instance for the commands run in-process

TINY = ["--data", "synthetic:classes=3,images=1000", "--proxy-resolution", "16", "--steps", "2", "--batch-size", "16",
        "--resolution", "64", "--space", "mnasnet", "--target-flops", "5M", "--cpus-per-trial", "1",
        "--flops-window", "0,inf", "--controller", "random", "--scheduler", "none"]


def _record(trial, choices=(0, 1)):
    return {"trial": trial, "trial_id": f"t{trial}", "choices": list(choices), "summary": "s",
            "block_strings": ["r1_k3_s11_e1_i32_o16"], "flops": 10, "params": 2, "accuracy": 0.5, "reward": 0.5,
            "status": "ok", "reason": "", "seconds": 1.0, "source": "trained"}


def test_a_torn_last_row_is_set_aside_and_the_intact_rows_kept(tmp_path):
    path = tmp_path / "trials.csv"
    for trial in range(3):
        append_trial(path, _record(trial))
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # the last row cut partway, as a kill during the write leaves it
    warning = repair_trials(path)
    assert "cut short" in warning and "trials.csv.torn" in warning and "2 intact rows" in warning
    assert list(pd.read_csv(path)["trial"]) == [0, 1]
    assert path.read_bytes() == data[: data.index(b"2,t2")]  # byte for byte the rows that were written whole
    assert (tmp_path / "trials.csv.torn").read_text().startswith("2,t2,")
    assert repair_trials(path) is None  # whole now


def test_a_malformed_row_in_the_middle_names_the_file_and_line(tmp_path):
    path = tmp_path / "trials.csv"
    for trial in range(3):
        append_trial(path, _record(trial))
    lines = path.read_bytes().split(b"\r\n")
    lines[2] = lines[2].replace(b'"[0, 1]"', b'"[0, oops]"')
    path.write_bytes(b"\r\n".join(lines))
    with pytest.raises(UserInputError, match=r"trials.csv: line 3 is malformed"):
        repair_trials(path)


def _run(tmp_path, name, *extra):
    out = tmp_path / name
    return search_main(TINY + ["--out", str(out), *extra]), out


@pytest.mark.slow  # a fault case, resumed end to end (the repair itself: the test above, in the default run)
def test_resume_after_a_torn_write_warns_once_and_completes(tmp_path, capsys):
    code, out = _run(tmp_path, "torn", "--trials", "3")
    assert code == 0
    csv = out / "trials.csv"
    data = csv.read_bytes()
    csv.write_bytes(data[:-40])
    capsys.readouterr()
    assert search_main(["--resume", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cut short" in err
    trials = pd.read_csv(csv)
    assert len(trials) == 3 and trials["trial"].is_unique and trials["choices"].is_unique


def test_resume_with_a_corrupt_controller_state_rebuilds_it_from_trials_csv(tmp_path, capsys):
    code, out = _run(tmp_path, "pickle", "--trials", "2")
    assert code == 0
    (out / "controller.pt").write_bytes(b"\x80\x04garbage")
    capsys.readouterr()
    assert search_main(["--resume", "--out", str(out), "--trials", "3"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "controller.pt" in err and "rebuilt from trials.csv" in err
    state = torch.load(out / "controller.pt", weights_only=True)
    assert state["told"] == [0, 1, 2] and state["controller"]["num_told"] == 3 + state["duplicates"]

    # a state file received from someone else runs no code: controller.pt is read with
    # torch.load(weights_only=True), and an old controller.pkl is not read at all
    marker = tmp_path / "marker"
    torch.save({"controller": WritesAMarker(marker)}, out / "controller.pt")
    (out / "controller.pkl").write_bytes(pickle.dumps({"controller": WritesAMarker(marker)}))
    assert search_main(["--resume", "--out", str(out), "--trials", "4"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert not marker.exists()
    assert len(err) == 1 and "controller.pt: cannot read it" in err[0] and "rebuilt from trials.csv" in err[0]
    (out / "controller.pt").unlink()  # a run of an older version: only controller.pkl
    assert search_main(["--resume", "--out", str(out), "--trials", "4"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert not marker.exists() and len(err) == 1 and "controller.pkl" in err[0] and "not loaded" in err[0]
    assert len(pd.read_csv(out / "trials.csv")) == 4


def test_an_address_where_nothing_answers_fails_at_once(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    started = time.perf_counter()
    code, _ = _run(tmp_path, "address", "--trials", "1", "--address", f"127.0.0.1:{port}")
    assert code == 2 and time.perf_counter() - started < 60
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--address 127.0.0.1:{port}: nothing answers there" in err


def test_an_out_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("not a directory")
    assert search_main(TINY + ["--out", str(target / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "cannot write there" in err


def test_unbounded_sizes_are_refused_at_once_with_the_bound(tmp_path, capsys):
    """nas-scale --phi 100 ran for minutes; a 10,000-layer spec made fvcore take minutes and gigabytes."""
    import json
    from pathlib import Path

    from nas.cli.profile import main as profile_main
    from nas.cli.scale import main as scale_main

    b0 = Path(__file__).resolve().parents[1] / "search_spaces" / "references" / "efficientnet_b0.json"
    started = time.perf_counter()
    assert scale_main([str(b0), "--phi", "100", "--out", str(tmp_path / "huge.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "out of bounds" in err and "at most 4096" in err
    deep = json.loads(b0.read_text())
    deep["blocks"][3]["repeats"] = 10_000
    (tmp_path / "deep.json").write_text(json.dumps(deep))
    assert profile_main([str(tmp_path / "deep.json")]) == 2
    assert "10,013 layers in all is too many (at most 2,000)" in capsys.readouterr().err
    assert scale_main([str(b0), "--phi", "12", "--out", str(tmp_path / "phi12.json")]) == 0  # analytic: fine
    capsys.readouterr()
    assert profile_main([str(tmp_path / "phi12.json")]) == 2  # fvcore: refused, with the way out
    assert "use --method analytic" in capsys.readouterr().err
    assert time.perf_counter() - started < 60


@pytest.mark.slow  # a fault case: worker processes killed under a real search
def test_a_worker_that_dies_or_is_killed_is_recorded_failed_and_the_search_finishes(tmp_path, capsys):
    """Trial 1's worker crashes (exits, as a segfault would end it); trial 2's is killed with SIGKILL from another
    process, as the kernel's OOM killer kills. Each is retried twice, then recorded failed with the reason; the
    search goes on. Ray printed a ~30-line ActorDiedError traceback per retry on the console: it goes to ray.log."""
    import os
    import signal
    import threading
    import time

    from nas.data.datasets import load_data
    from nas.engine.trainable import run_job
    from nas.search.config import SearchConfig
    from nas.search.driver import run_search

    pid_file = tmp_path / "trial-2.pid"

    def dying_1_killed_2(trial_config, datasets=None, resources=None):  # the real trainable, but for these two
        if trial_config["trial"] == 1:
            import os as worker_os

            worker_os._exit(3)
        if trial_config["trial"] == 2:
            import os as worker_os
            import time as worker_time

            with open(pid_file, "a") as handle:
                handle.write(f"{worker_os.getpid()}\n")
            worker_time.sleep(120)  # killed long before this ends
        run_job(trial_config, datasets, resources)

    killed: list[int] = []

    def killer() -> None:  # every attempt of trial 2 is killed, as the OOM killer would kill each again
        while len(killed) < 3:
            for pid in (int(p) for p in (pid_file.read_text().split() if pid_file.is_file() else [])):
                if pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.1)

    out = tmp_path / "killed"
    config = SearchConfig.of(target_flops=5_000_000, out=str(out), data="synthetic:classes=3,images=1000",
                          proxy_resolution=16, steps=2, batch_size=16, resolution=64, cpus_per_trial=1,
                          concurrency=1, window=(0, float("inf")), trials=4, controller="random", scheduler="none")
    data = load_data(config.proxy.data, config.proxy.resolution, config.proxy.val_fraction, config.proxy.seed)
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    started = time.perf_counter()
    with console_output():  # the lines as the command prints them
        assert run_search(config, data, trainable=dying_1_killed_2).finished
    assert time.perf_counter() - started < 100 and len(killed) == 3  # killed, not asleep: 1 + 2 retries
    trials = pd.read_csv(out / "trials.csv", keep_default_na=False).set_index("trial")
    assert list(trials["status"]) == ["ok", "failed", "failed", "ok"] and list(trials["reward"])[1:3] == [0, 0]
    for trial in (1, 2):
        assert "died (killed, out of memory, or crashed) on each of its 3 attempts" in trials.loc[trial, "reason"]
        assert str(out / "ray.log") in trials.loc[trial, "reason"]
    captured = capsys.readouterr()
    assert "trial   1 FAILED" in captured.out and "trial   2 FAILED" in captured.out
    assert captured.err == ""  # no traceback on the console (Ray's raylet prints one line per kill on stdout)
    assert "ActorDiedError" in (out / "ray.log").read_text()


@pytest.mark.slow  # a real search killed and resumed: about a minute
def test_kill_9_at_concurrency_2_then_resume_keeps_numbers_unique_and_trains_nothing_twice(tmp_path):
    """kill -9 of the driver (and the Ray instance it started) while two trials are in flight, then resume."""
    import json
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "killed"
    argv = [sys.executable, "-c", "import sys; from nas.cli.search import main as search_main; sys.exit(search_main())", *TINY,
            "--trials", "40", "--concurrency", "2", "--out", str(out), "--no-cache"]  # cannot finish before the kill
    argv[argv.index("--steps") + 1] = "40"
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    csv = out / "trials.csv"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if csv.exists() and len(csv.read_text().splitlines()) >= 4:  # header + 3 trials, 2 more in flight
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # only the processes this test started (its own session)
    process.wait(timeout=60)
    kept = pd.read_csv(csv)
    assert len(kept) < 40
    total = len(kept) + 3  # the resume completes a smaller total: the two in flight at the kill, and one more
    assert search_main(["--resume", "--out", str(out), "--trials", str(total)]) == 0
    trials = pd.read_csv(csv)
    assert trials["trial"].is_unique and len(trials) == total
    assert trials["choices"].map(lambda c: tuple(json.loads(c))).is_unique  # no architecture trained twice
    pd.testing.assert_frame_equal(trials.head(len(kept)), kept)  # the rows written before the kill, unchanged


@pytest.mark.slow  # a fault case; two real searches: about 15 s
def test_a_copied_run_resumes_in_the_copy_and_leaves_the_original_alone(tmp_path, monkeypatch):
    """--resume works in the --out it is given (it used the out saved in search.json: the original's)."""
    import shutil

    original = tmp_path / "base"
    assert search_main(TINY + ["--out", str(original), "--trials", "2", "--controller", "random"]) == 0
    before = {name: (original / name).read_bytes() for name in ("trials.csv", "search.json", "best_b0.json")}
    shutil.copytree(original, tmp_path / "copy")
    monkeypatch.chdir(tmp_path)  # a relative --out, from the directory it is relative to
    assert search_main(["--resume", "--out", "copy", "--trials", "3"]) == 0
    assert {name: (original / name).read_bytes() for name in before} == before  # untouched
    copied = pd.read_csv(tmp_path / "copy" / "trials.csv")
    assert list(copied["trial"]) == [0, 1, 2]
    assert json.loads((tmp_path / "copy" / "search.json").read_text())["config"]["out"] == "copy"


def test_a_second_command_in_a_run_directory_in_use_is_refused(tmp_path, capsys):
    from nas.files import RunLock

    run = tmp_path / "busy"
    assert search_main(TINY + ["--out", str(run), "--trials", "1", "--controller", "random"]) == 0
    rows = (run / "trials.csv").read_bytes()
    with RunLock(run):  # another nas-search working there
        assert search_main(["--resume", "--out", str(run), "--trials", "2"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{run} is in use by nas-search (pid {os.getpid()})" in err
        assert (run / "trials.csv").read_bytes() == rows  # nothing written
    assert search_main(["--resume", "--out", str(run), "--trials", "2"]) == 0  # released: taken over
    assert len(pd.read_csv(run / "trials.csv")) == 2


def test_a_run_without_its_search_json_says_what_to_do(tmp_path):
    from nas.errors import UserInputError
    from nas.search.driver import saved_config

    (tmp_path / "trials.csv").write_text("trial\n")
    with pytest.raises(UserInputError, match="search.json is missing .* start the search again there with its "
                                             "options"):
        saved_config(tmp_path)
    with pytest.raises(UserInputError, match="not found; is .* a nas-search run directory"):
        saved_config(tmp_path / "elsewhere")


@pytest.mark.slow  # a fault case; two real searches: about 15 s
def test_a_run_without_its_search_json_can_be_started_again_in_place(tmp_path, capsys):
    """Neither resumable (no settings) nor, before, restartable (trials.csv there): a new search starts in
    the same --out and the orphaned files are kept aside, untouched."""
    out = tmp_path / "run"
    assert search_main(TINY + ["--trials", "2", "--out", str(out)]) == 0
    (out / "search.json").unlink()
    before = (out / "trials.csv").read_text()
    assert search_main(["--resume", "--out", str(out)]) == 2
    assert "start the search again there" in capsys.readouterr().err
    assert search_main(TINY + ["--trials", "3", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"its files were moved to {out / 'orphaned-1'}" in err and err.count("\n") == 1
    assert (out / "orphaned-1" / "trials.csv").read_text() == before
    assert (out / "orphaned-1" / "best_b0.json").is_file()
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 3 and list(trials["trial"]) == [0, 1, 2] and (out / "search.json").is_file()


@pytest.mark.parametrize("command, argv, words", [
    ("search", ["--target-flops", "5M", "--cache", "c.sqlite", "--no-cache"], "--no-cache: not allowed with"),
    ("scale", ["B0", "--family", "--phi", "1"], "leave out --phi"),
    ("scale", ["B0", "--preset", "b2", "--alpha", "1.3"], "--alpha is used with --phi or a family"),
    ("scale", ["B0", "--phi", "1", "--steps", "10"], "--steps is used only with --grid-search"),
    ("scale", ["B0", "--phi", "1", "--no-family"], "--no-family is used only with --grid-search"),
    ("scale", ["B0", "--grid-search", "--phi", "2"], "do not combine it with --phi"),
    ("train", ["B0", "--epochs", "5", "--warmup-epochs", "5"], "--warmup-epochs 5: must be fewer than --epochs 5"),
    ("train", ["B0", "--workers", "3", "--batch-size", "2"], "--batch-size 2 does not split evenly over 3"),
    ("export", ["B0", "--onnx", "m.x", "--torchscript", "m.x"], "--onnx and --torchscript both name"),
    ("export", ["B0", "--onnx", "/proc/m.onnx"], "--onnx /proc: cannot write there"),
    ("latency_table", ["--min-run-time", "1e9", "--out", "t.json"], "--min-run-time 1e+09: at most 5 seconds"),
])
def test_flags_that_contradict_each_other_or_ask_too_much_are_refused_at_once(tmp_path, monkeypatch, capsys,
                                                                               command, argv, words):
    """Each was accepted before: a flag silently ignored, or minutes of work thrown away at the end."""
    import importlib
    from pathlib import Path

    b0 = Path(__file__).resolve().parents[1] / "search_spaces" / "references" / "efficientnet_b0.json"
    monkeypatch.chdir(tmp_path)
    main = importlib.import_module(f"nas.cli.{command}").main
    started = time.perf_counter()
    assert main([str(b0) if a == "B0" else a for a in argv] + (["--out", "out"] if command == "train" else [])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert time.perf_counter() - started < 30  # refused before any data is read or anything measured
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


def test_screened_candidates_are_written_in_batches_not_one_fsync_each(tmp_path):
    """A controller that proposes thousands of networks outside the window is not held up by a disk write and a
    state file per proposal: screened rows wait for the next trained one (or the end), and none is lost."""
    import numpy as np

    from nas.engine.job import Measurement
    from nas.search.config import SearchConfig
    from nas.search.recorder import Recorder
    from nas.search.run_files import STATE_FILE, read_records
    from nas.search.trial_record import trial_record
    from search_spaces.mnasnet import MnasNetSpace

    space, config = MnasNetSpace(), SearchConfig.of(target_flops=400_000_000, out=str(tmp_path))
    recorder = Recorder(tmp_path, config, space, 10, [], log=lambda line: None)
    rng = np.random.default_rng(0)

    def record(trial, status):
        choices = space.sample(rng)
        spec = space.decode(choices, num_classes=10)
        measured = Measurement(accuracy=0.5 if status == "ok" else 0.0, flops=1, params=1)
        return trial_record(trial, str(trial), choices, spec, measured, "trained" if status == "ok" else "screened",
                            config.objective.score, status=None if status == "ok" else "screened")

    for trial in range(3):
        recorder.record(record(trial, "screened"), {"trial": trial})
    assert not (tmp_path / "trials.csv").exists() and not (tmp_path / STATE_FILE).exists()
    recorder.record(record(3, "ok"), {"trial": 3})
    assert [r["trial"] for r in read_records(tmp_path / "trials.csv")] == [0, 1, 2, 3]
    recorder.record(record(4, "screened"), {"trial": 4})
    recorder.finalize()
    assert [r["status"] for r in read_records(tmp_path / "trials.csv")] == ["screened"] * 3 + ["ok", "screened"]
