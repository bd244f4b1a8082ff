"""End-to-end searches on Ray Tune with tiny budgets (Ray limited to the 2 CPUs of CI)."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import pytest

from nas.cli.search import main as search_main
from nas.console import console_output
from search_spaces import REFERENCES
from search_spaces.spec import load_spec

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray instance for the commands run in-process

def _finished_lines(printed):
    """``trial N finished ... acc A  reward R  best B ... [D/T done...]`` lines as {N: (A, R, B, D)}."""
    import re

    pattern = re.compile(r"^trial +(\d+) (?:finished|cached|stopped) .* acc (\S+) +reward (\S+) +best (\S+) .*\[(\d+)/")
    found = (pattern.match(line) for line in printed.splitlines())
    return {int(m[1]): (float(m[2]), float(m[3]), float(m[4]), int(m[5])) for m in found if m}


TINY = ["--data", "synthetic:classes=3,images=1000", "--proxy-resolution", "16", "--steps", "2", "--batch-size", "16",
        "--resolution", "64", "--space", "mnasnet", "--target-flops", "5M", "--cpus-per-trial", "1",
        "--flops-window", "0,inf", "--scheduler", "none"]


def _ended_by(lines, done):
    """The trials that had ended when the line saying ``done`` candidates were done was printed."""
    return [trial for trial, (*_, count) in lines.items() if count <= done]


def _search(tmp_path, name, *extra):
    out = tmp_path / name
    return search_main(TINY + ["--out", str(out), *extra]), out


def test_end_to_end_search_writes_every_output(tmp_path, capsys):
    code, out = _search(tmp_path, "run", "--trials", "4", "--controller", "evolution", "--concurrency", "2",
                        "--fit-width")  # every candidate fitted to the 5M target
    assert code == 0
    printed = capsys.readouterr().out
    assert "top 4 of 4 candidates (4 trained)" in printed
    assert "M6 = MBConv with expansion 6" in printed  # the notation explained
    assert "how well it ranks networks after real training is not measured" in printed  # TINY's 2-step proxy
    assert (recorded_loss := pd.read_csv(out / "trials.csv")["train_loss"]).notna().all() and (recorded_loss > 0).all()
    lines = _finished_lines(printed)
    recorded = pd.read_csv(out / "trials.csv").set_index("trial")
    assert sorted(lines) == [0, 1, 2, 3]  # numbered from 0, as in trials.csv and best_b0.json's provenance
    for trial, (accuracy, reward, best, done) in lines.items():  # each line says what trials.csv records
        summary = recorded.loc[trial, "summary"]
        assert f"trial   {trial} started   {summary}" in printed
        assert (accuracy, reward) == (round(recorded.loc[trial, "accuracy"], 3), round(recorded.loc[trial, "reward"], 4))
        assert best == round(recorded.loc[recorded.index.isin(_ended_by(lines, done)), "reward"].max(), 4)
    assert sorted(done for *_, done in lines.values()) == [1, 2, 3, 4]
    from PIL import Image

    with Image.open(out / "pareto.png") as plot:
        assert plot.format == "PNG" and plot.size == (770, 495)  # 7 x 4.5 inches at 110 dpi
    config = json.loads((out / "search.json").read_text())["config"]
    assert config["target_flops"] == 5_000_000 and config["controller"] == "evolution"
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 4 and sorted(trials["trial"]) == [0, 1, 2, 3]
    assert (trials["status"] == "ok").all()
    from nas.network.counting import profile
    from search_spaces.mnasnet import default_space

    from nas.search.run import open_run

    run = open_run(out)
    for _, row in trials.iterrows():  # counted at the target resolution (64) for the data's 3 classes
        shape = default_space().decode(json.loads(row["choices"]), resolution=64, num_classes=3)
        counted = profile(run.decode(json.loads(row["choices"]), name="x"), method="analytic")
        assert (row["flops"], row["params"]) == (counted["flops"], counted["params"])
        assert row["flops"] <= 5e6 < profile(shape, method="analytic")["flops"]  # fitted: under the 5M target
    assert trials["choices"].nunique() == 4  # no architecture trained twice
    best = load_spec(out / "best_b0.json")
    assert best.resolution == 64 and best.num_classes == 3
    assert best.metrics["reward"] == pytest.approx(trials["reward"].max())
    assert best.provenance["controller"] == "evolution" and best.provenance["target_flops"] == 5_000_000
    assert best.provenance["reward_mode"] == "soft" and best.provenance["w"] == -0.07
    from nas.network.counting import profile

    assert best.metrics["flops"] == profile(best)["flops"]  # fvcore at the target resolution
    assert (out / "ray").is_dir()
    timings = pd.read_csv(out / "timings.csv")  # the search's own wall time, its data's loading included
    assert list(timings["stage"]) == ["search"] and list(timings["status"]) == ["finished"]
    assert timings.loc[0, "seconds"] >= trials["seconds"].max() and timings.loc[0, "cpus"] >= 1


def test_a_search_starts_from_the_given_networks(tmp_path, capsys):
    from nas.files import save_spec
    from nas.search.start_points import resolve_start_points
    from search_spaces.mnasnet import default_space

    mine = str(tmp_path / "mine.json")  # a user's own spec file among the start points
    own = default_space().decode([1] * len(default_space().sizes), resolution=64, name="mine")
    save_spec(own, mine)
    code, out = _search(tmp_path, "start", "--trials", "4", "--controller", "random",
                        "--start-from", f"mobilenet_v2,mnasnet_a1,{mine}")
    assert code == 0
    printed = capsys.readouterr().out
    assert f"starting from mobilenet_v2, mnasnet_a1, {mine} (each as its nearest architecture in the space)" in printed
    starts = resolve_start_points(["mobilenet_v2", "mnasnet_a1", mine], default_space())
    assert default_space().decode(starts[2][1]).block_strings == own.block_strings  # in the space: itself
    trials = pd.read_csv(out / "trials.csv").set_index("trial")
    assert [json.loads(trials.loc[t, "choices"]) for t in (0, 1, 2)] == [choices for _, choices in starts]
    assert json.loads(trials.loc[3, "choices"]) not in [choices for _, choices in starts]  # then the controller
    assert "(start point: mobilenet_v2)" in printed and "(start point: mnasnet_a1)" in printed  # in the top list
    best = load_spec(out / "best_b0.json")
    names = {tuple(choices): name for name, choices in starts}
    assert best.provenance["start_point"] == names.get(tuple(best.provenance["choices"]))
    # the close-call line, worked out here from trials.csv: the trained candidates whose reward lies within one
    # binomial standard error (the proxy's 200 held-out images: TINY's 1000 x 0.2) of the winner's
    ok = pd.read_csv(out / "trials.csv").query("status == 'ok'").sort_values(["reward", "trial"],
                                                                               ascending=[False, True])
    top = ok.iloc[0]
    error = (top["accuracy"] * (1 - top["accuracy"]) / 200) ** 0.5
    close = ok[ok["reward"] >= top["reward"] - error * top["reward"] / top["accuracy"]]
    if len(close) < 2:
        assert "close call" not in printed
    else:
        assert (f"close call: {len(close) - 1} of the other {len(ok) - 1} trained candidates lie within one "
                f"standard error of the winner (+-{100 * error:.1f} points") in printed
        listed = [f"{t}" + (f" ({names[tuple(json.loads(c))]})" if tuple(json.loads(c)) in names else "")
                  for t, c in zip(close["trial"], close["choices"])]
        assert f"trials {', '.join(listed)}" in printed
        assert f"judge them by real training before choosing: nas-train {out} --trial N" in printed
    assert json.loads((out / "search.json").read_text())["config"]["start_from"] == ["mobilenet_v2", "mnasnet_a1", mine]


def _tiny_config(out, **changes):
    from nas.search.config import SearchConfig

    values = dict(target_flops=5_000_000, out=str(out), data="synthetic:classes=3,images=1000", proxy_resolution=16,
                  steps=2, batch_size=16, resolution=64, cpus_per_trial=1, window=(0, float("inf")),
                  scheduler="none")
    values.update(changes)
    return SearchConfig.of(**values)


def test_failed_trial_is_recorded_and_search_completes(tmp_path, capsys):
    """A trial whose worker raises (every retry) is recorded as failed with reward 0; the search goes on."""
    from nas.data.datasets import load_data
    from nas.search.driver import run_search
    from nas.engine.trainable import run_job

    def failing_second_trial(trial_config, datasets=None, resources=None):  # pickled by value with the trainable
        if trial_config["trial"] == 1:
            raise RuntimeError("injected failure")
        run_job(trial_config, datasets, resources)

    import signal

    config = _tiny_config(tmp_path / "fail", trials=3, controller="random")
    data = load_data(config.proxy.data, config.proxy.resolution, config.proxy.val_fraction, config.proxy.seed)
    handler = signal.getsignal(signal.SIGINT)
    with console_output():  # the lines as the command prints them
        outcome = run_search(config, data, trainable=failing_second_trial)
    assert outcome.finished
    assert signal.getsignal(signal.SIGINT) is handler  # Tune's handler is not left to swallow a later Ctrl-C
    trials = pd.read_csv(tmp_path / "fail" / "trials.csv", keep_default_na=False)
    assert len(trials) == 3
    failed = trials[trials["trial"] == 1].iloc[0]
    assert failed["status"] == "failed" and "errored" in failed["reason"] and failed["reward"] == 0
    assert (trials[trials["trial"] != 1]["status"] == "ok").all()
    failed_line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("trial   1 FAILED")]
    assert len(failed_line) == 1 and failed["reason"] in failed_line[0]


def test_an_exception_inside_the_trial_is_a_failed_measurement():
    from nas.data.datasets import load_data
    from nas.engine.job import Job
    from nas.engine.measure import measure

    config = _tiny_config("unused")
    data = load_data(config.proxy.data, config.proxy.resolution, config.proxy.val_fraction, config.proxy.seed)
    spec = load_spec(Path(__file__).resolve().parents[1] / "search_spaces" / "references" / "mobilenet_v2.json")
    spec_dict = spec.to_dict()
    spec_dict["blocks"][0]["in"] = 7  # does not match the stem: the spec is rejected inside the trial
    measured = measure(Job(spec_dict, config.proxy.recipe(), seed=0), data)
    assert measured.status == "failed" and "blocks[0].in" in measured.reason and measured.accuracy == 0.0
    good = measure(Job(spec.replace(resolution=64, num_classes=3).to_dict(), config.proxy.recipe(), seed=0), data)
    assert good.status == "ok" and good.steps == 2 and good.final
    assert good.accuracy * len(data.y_val) == round(good.accuracy * len(data.y_val))  # a share of held-out images
    assert (good.flops, good.params) == (25_547_776, 2_227_715)  # fvcore at 64 px, 3 classes
    again = measure(Job(spec.replace(resolution=64, num_classes=3).to_dict(), config.proxy.recipe(), seed=0), data)
    assert again.accuracy == good.accuracy and again.final_loss == good.final_loss  # seeded: the same again
    assert good.train_loss > 0 and again.train_loss == good.train_loss


def test_a_narrow_proxy_trains_a_narrower_network_and_counts_the_full_one():
    from nas.data.datasets import load_data
    from nas.engine.job import Job
    from nas.engine.measure import measure

    config = _tiny_config("unused")
    data = load_data(config.proxy.data, config.proxy.resolution, config.proxy.val_fraction, config.proxy.seed)
    spec = load_spec(Path(__file__).resolve().parents[1] / "search_spaces" / "references" / "mobilenet_v2.json")
    spec = spec.replace(resolution=64, num_classes=3)
    full = measure(Job(spec.to_dict(), config.proxy.recipe(), seed=0), data)
    narrow = measure(Job(spec.to_dict(), config.proxy.recipe(), seed=0, train_width=0.25), data)
    assert narrow.status == "ok" and (narrow.flops, narrow.params) == (full.flops, full.params)
    assert narrow.train_loss != full.train_loss  # another network was trained


def test_resume_continues_without_rerunning(tmp_path):
    code, out = _search(tmp_path, "resume", "--trials", "2", "--controller", "ppo")
    assert code == 0
    first = pd.read_csv(out / "trials.csv")
    state_before = (out / "controller.pt").read_bytes()
    # what a killed run leaves: trials.csv, controller.pt; the next run continues to the new total
    assert search_main(["--resume", "--out", str(out), "--trials", "4"]) == 0
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 4 and sorted(trials["trial"]) == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(trials.head(2), first)
    assert trials["choices"].nunique() == 4
    assert (out / "controller.pt").read_bytes() != state_before
    import torch

    state = torch.load(out / "controller.pt", weights_only=True)
    assert state["told"] == [0, 1, 2, 3]
    # every trial told exactly once (plus proposals answered from the records), none twice after the resume
    assert state["controller"]["num_told"] == 4 + state["duplicates"]
    assert json.loads((out / "search.json").read_text())["resumed"] is True
    # a finished search resumes to nothing new
    assert search_main(["--resume", "--out", str(out), "--trials", "4"]) == 0
    assert len(pd.read_csv(out / "trials.csv")) == 4


@pytest.mark.parametrize("argv, words", [
    (["--target-flops", "400X"], "400X"),
    (["--target-flops", "400M", "--trials", "-3"], "--trials"),
    (["--target-flops", "400M", "--data", "cifar10:/no/such/dir"], "no such directory"),
    (["--target-flops", "400M", "--data", "imagenet"], "expected synthetic"),
    (["--trials", "3"], "a target is required: --target-flops 400M"),
    (["--resume"], "--resume needs --out"),
    (["--target-flops", "400M", "--controller", "bayes"], "--controller"),
    (["--target-flops", "400M", "--start-from", "resnet50"], "--start-from resnet50: neither a reference network"),
    (["--target-flops", "400M", "--flops-window", "1.5,0.5"], "expected 0 <= LO < HI"),
    (["--target-flops", "400M", "--flops-window", "x"], "expected LO,HI"),
    (["--target-flops", "400M", "--space", "/no/such/space.json"], "--space /no/such/space.json: no such space file"),
    (["--target-flops", "400M", "--space", "setup.cfg"], "not valid JSON"),
])
def test_bad_arguments_exit_2_with_one_line(argv, words, capsys, tmp_path):
    assert search_main(argv + ["--out", str(tmp_path / "x")] if "--resume" not in argv else argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_resume_of_a_missing_run(tmp_path, capsys):
    assert search_main(["--resume", "--out", str(tmp_path / "none")]) == 2
    assert "search.json" in capsys.readouterr().err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_node(*args, env):
    """``ray start ... --block`` in a session of its own: stopping it stops only what it started."""
    return subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", *args, "--block",
                             "--disable-usage-stats"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, start_new_session=True)


def _wait_for_port(port, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)


def _stop(processes):
    for process in reversed(processes):  # --block: each stops the processes it started
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.slow  # a cluster case: a Ray head started by the test, about 25 s
def test_search_on_a_separately_started_ray_head(tmp_path):
    """A head we start ourselves (and stop ourselves: only that head), joined with --address."""
    port = _free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    head = _ray_node("--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false", env=env)
    try:
        _wait_for_port(port)
        code = subprocess.run([sys.executable, "-c", "import sys; from nas.cli.search import main as search_main; "
                               "sys.exit(search_main())", *TINY, "--trials", "2", "--controller", "random",
                               "--address", f"127.0.0.1:{port}", "--out", str(tmp_path / "cluster")],
                              capture_output=True, text=True, timeout=300, env=env)
        assert code.returncode == 0, code.stderr[-2000:]
        assert f"on 127.0.0.1:{port} (1 node, 2 CPUs, 0 GPUs): 1 at a time, 1 CPU + 0 GPU each" in code.stdout
        assert len(pd.read_csv(tmp_path / "cluster" / "trials.csv")) == 2
    finally:
        _stop([head])


@pytest.mark.parametrize("sent, status", [
    pytest.param("SIGINT", 130, marks=pytest.mark.slow),  # the same path as SIGTERM's but for the status: slow
    pytest.param("SIGTERM", 143, marks=pytest.mark.slow),  # the graceful stop: also by Ctrl-C in the default run
    pytest.param("SIGTERM to the group", 143, marks=pytest.mark.slow)])  # Ctrl-C: the default run's
def test_ctrl_c_or_sigterm_then_resume(tmp_path, sent, status):
    """Ctrl-C (or SIGTERM, as docker stop sends) mid-search keeps the finished trials and the plot, says how to
    resume in one line, exits 130 (143); --resume completes the total. "to the group" is what ``timeout`` and
    schedulers do: the local Ray instance's processes get SIGTERM too (its raylet dies, and the command used to
    hang a minute inside Ray, then die in Ray's words without the resume line)."""
    import signal

    out = tmp_path / "interrupted"
    argv = [sys.executable, "-c", "import sys; from nas.cli.search import main as search_main; sys.exit(search_main())",
            *TINY, "--trials", "40", "--out", str(out)]  # far more than can finish before the signal lands
    argv[argv.index("--steps") + 1] = "20"  # longer trials, so that Ctrl-C lands mid-search
    group = sent.endswith("group")
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=group)  # its own process group, as timeout makes one
    csv = out / "trials.csv"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if csv.exists() and len(csv.read_text().splitlines()) >= 3:  # header + 2 trials
            break
        time.sleep(0.2)
    if group:
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.send_signal(getattr(signal, sent))
    _, err = process.communicate(timeout=240)
    done = pd.read_csv(csv)
    assert len(done) < 40
    assert process.returncode == status, err[-2000:]
    assert len(err.strip().splitlines()) == 1, err[-2000:]  # one line, no crash dump
    assert f"continue with: nas-search --resume --out {out}" in err
    assert (out / "pareto.png").is_file() or group  # without Ray the graceful stop cannot draw it: resume does
    total = len(done) + 1  # the resume completes a total of one more trial (not 40: a minute of CI)
    assert search_main(["--resume", "--out", str(out), "--trials", str(total)]) == 0
    assert (out / "pareto.png").is_file()
    trials = pd.read_csv(csv)
    assert len(trials) == total and sorted(trials["trial"]) == list(range(total))
    stages = pd.read_csv(out / "timings.csv")  # the stopped search's row (none where its group was killed)
    assert list(stages["status"]) == (["finished"] if group else ["interrupted", "finished"])
    pd.testing.assert_frame_equal(trials.head(len(done)), done)


def test_ctrl_c_stops_a_search_whose_window_nothing_reaches(tmp_path):
    """Every proposal screened (a target below the space): Ctrl-C still stops the search at once with the
    resume line, instead of after the give-up bound of screened proposals."""
    import signal

    out = tmp_path / "unreachable"
    argv = [sys.executable, "-c", "import sys; from nas.cli.search import main as search_main; sys.exit(search_main())",
            *TINY, "--target-flops", "1", "--flops-window", "0.5,1.5", "--controller", "ppo", "--out", str(out)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed = []
    for line in process.stdout:  # the search has started proposing (and screening every proposal)
        printed.append(line)
        if "candidates by ppo" in line:
            break
    time.sleep(3)  # a few seconds of screening: dozens of proposals (PPO asks ~0.1 s each)
    process.send_signal(signal.SIGINT)
    sent = time.time()
    rest, err = process.communicate(timeout=240)
    printed = "".join(printed) + rest
    csv = out / "trials.csv"
    assert process.returncode == 130, err[-2000:]
    assert time.time() - sent < 60, "Ctrl-C waited for the screening to give up"
    # no candidate trained: one line says so, instead of an empty "top 0 of N" table
    last = err.splitlines()[-1]  # after the warning about the target below the space
    assert err.count("nas-search:") == 1 and last.startswith("nas-search: interrupted before any candidate finished (")
    assert last.endswith(f"proposals screened out); continue with: nas-search --resume --out {out}")
    assert "top 0 of" not in printed and "outputs in" not in printed
    assert set(pd.read_csv(csv)["status"]) == {"screened"}


def test_more_gpus_than_the_cluster_has_is_a_usage_error(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _ = _search(tmp_path, "gpu", "--trials", "1", "--gpus-per-trial", "1")
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--gpus-per-trial 1: the Ray cluster has 0 GPUs" in err


def test_resume_with_a_new_target_rescores_the_recorded_trials(tmp_path, capsys):
    """A run whose widths are not fitted (each network's FLOPs its own) is rescored for a new target; a fitted
    run refuses one (its networks would change with it)."""
    code, fitted = _search(tmp_path, "fitted", "--trials", "1", "--controller", "random", "--fit-width")
    assert code == 0
    capsys.readouterr()
    assert search_main(["--resume", "--out", str(fitted), "--target-flops", "10M"]) == 2
    assert "fits every network's widths to its FLOPs target" in capsys.readouterr().err
    code, out = _search(tmp_path, "rescore", "--trials", "2", "--controller", "ppo")
    assert code == 0
    before = pd.read_csv(out / "trials.csv")
    assert search_main(["--resume", "--out", str(out), "--trials", "3", "--target-flops", "10M", "--w", "-0.5"]) == 0
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 3
    expected = trials["accuracy"] * (trials["flops"] / 10_000_000) ** -0.5
    assert trials["reward"].to_numpy() == pytest.approx(expected.to_numpy())
    pd.testing.assert_series_equal(trials["accuracy"].head(2), before["accuracy"])  # measured once, rescored
    assert not (trials["reward"].head(2).to_numpy() == pytest.approx(before["reward"].to_numpy()))
    best = load_spec(out / "best_b0.json")
    assert best.provenance["target_flops"] == 10_000_000 and best.provenance["w"] == -0.5
    assert best.metrics["reward"] == pytest.approx(trials["reward"].max())
    assert json.loads((out / "search.json").read_text())["config"]["target_flops"] == 10_000_000
    import torch

    state = torch.load(out / "controller.pt", weights_only=True)
    assert state["controller"]["num_told"] == 3 + state["duplicates"]  # a fresh controller, told the rescored history

    # the hard form, through the command line (with --debug, which only changes what is shown): the accuracy at or
    # under the target, accuracy x target / FLOPs over it
    assert search_main(["--resume", "--out", str(out), "--reward", "hard", "--debug"]) == 0
    hard = pd.read_csv(out / "trials.csv")
    over = hard["flops"] > 10_000_000
    expected = np.where(over, hard["accuracy"] * 10_000_000 / hard["flops"], hard["accuracy"])
    assert hard["reward"].to_numpy() == pytest.approx(expected)
    assert len(hard) == 3 and load_spec(out / "best_b0.json").provenance["reward_mode"] == "hard"
    saved = json.loads((out / "search.json").read_text())["config"]
    assert saved["reward"] == "hard" and saved["debug"] is True


def test_a_run_keeps_its_space_and_resume_rejects_a_different_definition(tmp_path, capsys):
    from nas.search.run import open_run
    from search_spaces.mnasnet import MnasNetConfig

    space_file = tmp_path / "three-blocks.json"  # a user's space: any subset of the fields
    space_file.write_text(json.dumps({"skeleton": {"channels": [16, 32, 64], "layers": [1, 2, 1],
                                                   "strides": [1, 2, 2], "stem": 16, "head": 256},
                                      "ops": ["dsconv", "mbconv6"]}))
    code, out = _search(tmp_path, "definition", "--trials", "2", "--controller", "random", "--space", str(space_file))
    assert code == 0
    saved = json.loads((out / "search.json").read_text())
    kept = MnasNetConfig.from_json(out / "space.json")  # the run's space beside its records, a space file itself
    assert saved["space_fingerprint"] == kept.fingerprint() == MnasNetConfig.from_json(space_file).fingerprint()
    run = open_run(out)
    assert run.space.config == kept and len(run.space) == 18
    for record in run.records():  # every trial decodes, in the run's own space, to what the search trained
        spec = run.trial_spec(record["trial"])
        assert len(spec.blocks) == 3 and list(spec.block_strings) == list(record["block_strings"])
    assert len(load_spec(out / "best_b0.json").blocks) == 3
    capsys.readouterr()
    assert search_main(["--resume", "--out", str(out), "--steps", "7"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--steps 7 differs from the run's (2)" in err
    default_space = tmp_path / "default.json"
    default_space.write_text("{}")
    assert search_main(["--resume", "--out", str(out), "--space", str(default_space)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--space describes another space ({MnasNetConfig().fingerprint()})" in err
    # the run's own space file and a flag at the value the run already uses are not changes
    assert search_main(["--resume", "--out", str(out), "--space", str(out / "space.json"), "--lr", "0.003"]) == 0


def test_a_search_over_the_downsampling_space_trains_at_the_resolution_its_networks_run_at(tmp_path, capsys):
    from nas.network.counting import profile
    from nas.search.run import open_run

    at = TINY.index("--proxy-resolution")
    argv = TINY[:at] + TINY[at + 2:]
    argv[argv.index("--resolution") + 1] = "16"  # the images' size: 16 px, no --proxy-resolution
    at = argv.index("--space")
    argv = argv[:at] + argv[at + 2:]  # no --space: at 16 px the default is the downsampling space
    argv[argv.index("--target-flops") + 1] = "b0"  # EfficientNet-B0's FLOPs at 16 px, 3 classes: no arithmetic
    out = tmp_path / "down"
    assert search_main(argv + ["--trials", "3", "--controller", "random", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "warning" not in printed.err
    assert "search space: downsampling searched: the stem and each reducing block choose stride 2 or 1; 47 " \
           "decisions" in printed.out
    run = open_run(out)
    assert run.config.proxy.resolution == run.config.objective.resolution == 16 and len(run.space) == 47
    b0 = load_spec(Path(REFERENCES) / "efficientnet_b0.json")
    assert run.config.objective.target_flops == profile(b0, 16, method="fvcore", num_classes=3)["flops"]
    assert f"target: efficientnet_b0's FLOPs at 16 px with 3 classes, {run.config.objective.target_flops / 1e6:.4g}M" \
        in printed.out
    for record in run.records():  # FLOPs as trained: fvcore's count of the decoded network, strides and all
        spec = run.trial_spec(record["trial"])
        assert len(record["choices"]) == 47 and spec.stem_stride == run.space.strides(record["choices"])[0]
        assert profile(spec, method="fvcore")["flops"] == record["flops"]


@pytest.mark.slow  # two searches (nas-proxy-check's end-to-end test is served from the cache in the default run)
def test_a_second_search_on_the_same_proxy_is_served_from_the_cache(tmp_path, capsys, private_cache_dir):
    """Evolution's first proposals are random and do not depend on rewards: the same seed proposes them again."""
    code, first = _search(tmp_path, "first", "--trials", "3", "--controller", "evolution")
    assert code == 0
    import sqlite3

    with sqlite3.connect(private_cache_dir / "results.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 3
    code, second = _search(tmp_path, "second", "--trials", "3", "--controller", "evolution", "--target-flops", "9M")
    assert code == 0
    a, b = pd.read_csv(first / "trials.csv"), pd.read_csv(second / "trials.csv")
    assert list(a["source"]) == ["trained"] * 3 and list(b["source"]) == ["cache"] * 3
    assert list(b["choices"]) == list(a["choices"]) and list(b["accuracy"]) == list(a["accuracy"])
    assert list(b["flops"]) == list(a["flops"])
    assert b["reward"].to_numpy() == pytest.approx((b["accuracy"] * (b["flops"] / 9e6) ** -0.07).to_numpy())
    printed = capsys.readouterr().out
    assert "finished 3 candidates in " in printed and "(3 from the cache, 0 screened out by FLOPs)" in printed
    assert sorted(_finished_lines(printed.split("outputs in")[1])) == [0, 1, 2]  # the second run: 3 lines
    code, third = _search(tmp_path, "third", "--trials", "2", "--controller", "evolution", "--no-cache")
    assert code == 0 and list(pd.read_csv(third / "trials.csv")["source"]) == ["trained"] * 2


def test_a_corrupt_cache_warns_once_and_the_search_goes_on(tmp_path, capsys):
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    code, out = _search(tmp_path, "corrupt", "--trials", "2", "--controller", "random", "--cache", str(broken))
    assert code == 0
    err = capsys.readouterr().err
    assert err.count("result cache") == 1 and str(broken) in err and "continuing without it" in err
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2 and (trials["source"] == "trained").all() and (trials["status"] == "ok").all()


def test_asha_stops_a_weak_candidate_at_a_rung_and_it_is_recorded_stopped(tmp_path, capsys):
    """Trial 1 is made weak (its rung reports say accuracy 0, its training is real): ASHA stops it there."""
    from ray import tune

    from nas.data.datasets import load_data
    from nas.search.driver import run_search
    from nas.engine.job import Job
    from nas.engine.measure import measure

    def weak_second_trial(trial_config, datasets=None, resources=None):  # pickled by value with the trainable
        trial = trial_config["trial"]

        def report(measured):
            measured.accuracy = 0.0 if trial == 1 else 0.9
            tune.report(measured.to_dict())

        tune.report(measure(Job.from_dict(trial_config["job"]), datasets["proxy"], report=report).to_dict())

    config = _tiny_config(tmp_path / "asha", trials=2, controller="random", steps=8, scheduler="asha",
                          concurrency=1)
    data = load_data(config.proxy.data, config.proxy.resolution, config.proxy.val_fraction, config.proxy.seed)
    with console_output():  # the lines as the command prints them
        outcome = run_search(config, data, trainable=weak_second_trial)
    assert outcome.finished
    trials = pd.read_csv(tmp_path / "asha" / "trials.csv", keep_default_na=False).set_index("trial")
    assert trials.loc[0, "status"] == "ok" and trials.loc[0, "steps"] == 8
    assert trials.loc[1, "status"] == "stopped" and trials.loc[1, "steps"] == 2  # the first rung: 8 / 4
    assert trials.loc[1, "accuracy"] == 0.0
    from nas.network.counting import profile
    from nas.search.run import open_run

    counted = profile(open_run(tmp_path / "asha").trial_spec(1), method="fvcore")  # a stopped trial keeps its counts
    assert (trials.loc[1, "flops"], trials.loc[1, "params"]) == (counted["flops"], counted["params"])
    stopped_line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("trial   1 stopped")]
    assert len(stopped_line) == 1 and stopped_line[0].endswith("stopped at step 2)  [2/2 done]")


def test_a_flops_window_screens_and_the_search_trains_only_inside_it(tmp_path, capsys):
    """The real trainer with ASHA on and the FLOPs pre-screen at 0.9-1.1 x a 25M target at 64 px."""
    tiny = [a for a in TINY if a not in ("5M", "--flops-window", "0,inf", "--target-flops")]
    out = tmp_path / "screen"
    code = search_main(tiny + ["--target-flops", "25M", "--out", str(out), "--trials", "3", "--controller", "random",
                               "--scheduler", "asha", "--steps", "8", "--flops-window", "0.9,1.1"])
    assert code == 0
    trials = pd.read_csv(out / "trials.csv", keep_default_na=False)
    trained = trials[trials["status"] != "screened"]
    screened = trials[trials["status"] == "screened"]
    assert len(trained) == 3 and set(trained["status"]) <= {"ok", "stopped"}
    assert trained["flops"].between(22_500_000, 27_500_000).all() and len(screened) >= 1
    assert not screened["flops"].between(22_500_000, 27_500_000).any()
    for _, row in screened.iterrows():  # told the lowest reward measured before it
        before = trained[trained["trial"] < row["trial"]]["reward"]
        assert row["reward"] == pytest.approx(before.min() if len(before) else 0.0)
    assert sorted(trials["trial"]) == list(range(len(trials)))
    printed = capsys.readouterr().out
    assert f"[3/3 done, {len(screened)} screened]" in printed  # the last line counts every screened one
    assert "finished 3 candidates in " in printed and f"{len(screened)} screened out by FLOPs)" in printed


@pytest.mark.slow  # two Ray nodes started and stopped by the test: about a minute
def test_a_search_spreads_over_a_head_and_a_worker_node_joined_by_host_and_port(tmp_path):
    """The README's cluster commands on one machine: a head and a second node, each with its own CPU; the
    driver joins by host:port (sending this machine's auth token); the test stops only what it started."""
    port = _free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    token = subprocess.run([str(Path(sys.executable).with_name("ray")), "get-auth-token", "--generate"],
                           capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1]
    node_env = dict(env, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)  # as the README says for head and workers
    started = [_ray_node("--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", env=node_env)]
    try:
        _wait_for_port(port)
        started.append(_ray_node(f"--address=127.0.0.1:{port}", "--num-cpus=1", env=node_env))
        time.sleep(10)  # the second node registers
        done = subprocess.run([sys.executable, "-c", "import sys; from nas.cli.search import main as search_main; "
                               "sys.exit(search_main())", *TINY, "--trials", "4", "--controller", "random",
                               "--concurrency", "2", "--address", f"127.0.0.1:{port}",
                               "--out", str(tmp_path / "two-nodes")],
                              capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"127.0.0.1:{port} (2 nodes, 2 CPUs, 0 GPUs)" in done.stdout, done.stdout
        assert "2 at a time, 1 CPU" in done.stdout and "InvalidAuthToken" not in done.stderr
        assert len(pd.read_csv(tmp_path / "two-nodes" / "trials.csv")) == 4
    finally:
        _stop(started)


@pytest.mark.parametrize("kind", ["npz", "cifar10", "folder", "csv"])
def test_every_data_format_runs_through_a_search(kind, tmp_path, capsys):
    """Each --data format of the registry (synthetic is every other test's) carries a search to its end."""
    import pickle

    from PIL import Image

    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = rng.integers(0, 255, (60, 12, 12, 3), dtype=np.uint8)
    if kind == "npz":
        np.savez(tmp_path / "d.npz", x=x, y=y)
        data = f"npz:{tmp_path / 'd.npz'}"
    elif kind == "cifar10":
        (tmp_path / "c10").mkdir()
        with open(tmp_path / "c10" / "data_batch_1", "wb") as handle:
            pickle.dump({b"data": rng.integers(0, 255, (60, 3072), dtype=np.uint8), b"labels": list(y)}, handle)
        data = f"cifar10:{tmp_path / 'c10'}"
    else:
        lines = ["path,label"]
        for i in range(60):
            folder = tmp_path / "photos" / f"class{y[i]}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i]).save(folder / f"{i}.png")
            lines.append(f"photos/class{y[i]}/{i}.png,class{y[i]}")
        (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
        data = f"folder:{tmp_path / 'photos'}" if kind == "folder" else f"csv:{tmp_path / 'd.csv'}"
    argv = [*TINY, "--trials", "1", "--batch-size", "8", "--out", str(tmp_path / "run"), "--finalists", "0"]
    argv[argv.index("--data") + 1] = data
    assert search_main(argv) == 0
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    classes = 10 if kind == "cifar10" else 3  # CIFAR-10 has its ten classes whatever the labels used
    assert list(trials["status"]) == ["ok"] and json.loads((tmp_path / "run" / "best_b0.json").read_text())[
        "num_classes"] == classes
    assert f"{data}: 48 train / 12 val images, {classes} classes" in capsys.readouterr().out


def test_a_search_with_optuna_s_tpe_saves_its_study_and_resumes(tmp_path):
    """--controller optuna in a real search: its state (the study's trials) is saved in controller.pt, read
    with weights_only, and a resumed run completes the total with it."""
    code, out = _search(tmp_path, "tpe", "--trials", "2", "--controller", "optuna")
    assert code == 0
    state = torch.load(out / "controller.pt", weights_only=True)["controller"]
    assert state["name"] == "optuna" and len(state["trials"]) >= 2
    assert search_main(["--resume", "--out", str(out), "--trials", "3"]) == 0
    trials = pd.read_csv(out / "trials.csv")
    assert sorted(trials["trial"]) == [0, 1, 2]
    assert len(torch.load(out / "controller.pt", weights_only=True)["controller"]["trials"]) >= 3
