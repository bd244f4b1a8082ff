"""nas-proxy-check: candidate selection, the figures, bad input, and one tiny end-to-end check on Ray."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from nas.cli.proxy_check import main as proxy_check_main
from nas.search.config import SearchConfig
from nas.proxy_check.candidates import sample_stratified, select_candidates
from nas.proxy_check.config import ProxyCheckConfig
from nas.proxy_check.driver import COLUMNS
from nas.proxy_check.report import in_window, summarize, verdict
from nas.network.counting import profile

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray instance for the commands run in-process

TINY = ["--data", "synthetic:classes=3,images=1000", "--proxy-resolution", "16", "--steps", "2", "--batch-size", "16",
        "--resolution", "64", "--target-flops", "5M", "--cpus-per-trial", "1"]


def _rows(proxy, reference, again=None, failed=()):
    """Rows of a check: one per model and budget, accuracies given, FLOPs all equal."""
    rows = []
    for model, (p, r) in enumerate(zip(proxy, reference)):
        budgets = [("proxy", 1, p), ("reference", 1, r)] + ([("proxy", 2, again[model])] if again else [])
        for budget, repeat, accuracy in budgets:
            status = "failed" if (model, budget) in failed else "ok"
            rows.append({"model": model, "name": f"m{model}", "kind": "sampled", "budget": budget, "repeat": repeat,
                         "flops": 100, "accuracy": accuracy, "reward": accuracy, "status": status,
                         "seconds": 10.0 if budget == "reference" else 1.0, "source": "trained"})
    return pd.DataFrame(rows, columns=COLUMNS)


def test_figures_of_a_perfect_proxy():
    figures = summarize(_rows([0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], again=[0.1, 0.2, 0.3, 0.4]), repeats=2)
    assert figures["accuracy"]["kendall_tau_b"]["value"] == 1.0
    assert figures["accuracy"]["kendall_tau_b"]["interval90"] == [1.0, 1.0]
    assert figures["accuracy"]["spearman_rho"]["value"] == 1.0 and figures["accuracy"]["top_k_overlap"] == 1.0
    assert figures["accuracy"]["top_k"] == 1  # 25% of 4 models
    assert figures["seed_to_seed"]["kendall_tau_b"]["value"] == 1.0
    assert figures["seconds"]["cost_ratio"] == 10.0
    assert figures["per_seed_kendall_tau_b"] == [1.0, 1.0]
    assert figures["averaged_proxy"]["kendall_tau_b"]["value"] == 1.0
    assert figures["verdict"].startswith("tau 1.00 (by seed: 1.00, 1.00; seed 1's 90% interval [1.00, 1.00]): "
                                         "the proxy ranks these architectures well")


def test_the_verdict_judges_the_mean_over_seeds_and_names_what_averaging_buys():
    # seed 1 ranks perfectly, seed 2 in reverse: one run of this proxy is a coin toss
    figures = summarize(_rows([0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], again=[0.3, 0.25, 0.2, 0.15]), 2)
    assert figures["per_seed_kendall_tau_b"] == [1.0, -1.0]
    assert figures["verdict"].startswith("tau 0.00 (by seed: 1.00, -1.00;")
    assert "does not rank" in figures["verdict"] and "averaging 2 seeds ranks at tau 1.00" in figures["verdict"]


def test_a_failed_model_is_left_out_and_counted():
    rows = _rows([0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.4, 0.3, 0.2, 0.9], failed={(4, "reference")})
    figures = summarize(rows, repeats=1)
    assert figures["models"] == 5 and figures["ranked"] == 4 and figures["left_out"] == 1
    assert figures["accuracy"]["kendall_tau_b"]["value"] == -1.0  # model 4 (0.9) would have broken the tie
    assert "does not rank" in figures["verdict"] and "seed_to_seed" not in figures


def test_tau_inside_the_window_ranks_only_the_models_there():
    # the proxy gets the order right overall (FLOPs does too) but reversed among the three mid-sized models
    rows = _rows([0.1, 0.4, 0.3, 0.2, 0.9], [0.1, 0.2, 0.3, 0.4, 0.9])
    rows["flops"] = rows["model"].map({0: 10, 1: 40, 2: 50, 3: 60, 4: 500})
    figures = in_window(rows, 30, 70)["in_window"]
    assert figures["models"] == 3 and figures["flops"] == [30, 70]
    assert figures["accuracy"]["kendall_tau_b"]["value"] == -1.0
    assert figures["flops_alone"]["kendall_tau_b"]["value"] == 1.0
    assert in_window(rows, 30, 55) == {}  # two models rank nothing worth a figure


def test_verdict_words_follow_tau_and_its_interval():
    def figures(value, low, high, seed=None):
        out = {"ranked": 10, "accuracy": {"kendall_tau_b": {"value": value, "interval90": [low, high]}}}
        if seed is not None:
            out["seed_to_seed"] = {"kendall_tau_b": {"value": seed}}
        return out

    assert "ranks these architectures well" in verdict(figures(0.8, 0.6, 0.9))
    assert "interval is wide" in verdict(figures(0.6, 0.2, 0.9))
    assert "roughly" in verdict(figures(0.4, 0.1, 0.7))
    assert "learns mostly noise" in verdict(figures(0.1, -0.3, 0.5, seed=0.2))
    assert "across seeds only at tau 0.20" in verdict(figures(0.1, -0.3, 0.5, seed=0.2))
    assert "too few models" in verdict({"ranked": 1})


def test_sampled_models_spread_across_the_flops_window():
    config = ProxyCheckConfig(search=SearchConfig.of(target_flops=400_000_000, out="x"), models=8)
    chosen = sample_stratified(config, config.search.search_space(), num_classes=10, count=8, seed=0)
    flops = [profile(c.spec, method="analytic")["flops"] for c in chosen]
    assert len(chosen) == 8 and len({" ".join(c.spec.block_strings) for c in chosen}) == 8
    assert all(200e6 <= f <= 600e6 for f in flops)
    assert flops == sorted(flops)  # one per stratum, strata in increasing FLOPs
    assert max(flops) / min(flops) > 2  # spread, not clustered at the target
    with_references = select_candidates(config, num_classes=10)
    assert [c.name for c in with_references[8:]] == ["efficientnet_b0", "mnasnet_a1", "mobilenet_v2"]
    assert all(c.spec.num_classes == 10 and c.spec.resolution == 224 for c in with_references)


def test_from_a_run_takes_its_best_models_first(tmp_path):
    from nas.search.run_files import append_trial, write_json
    from search_spaces.mnasnet import MnasNetConfig, MnasNetSpace, Skeleton

    # a run made with a space of its own (5 blocks): its choices decode with it, not with the default space
    space = MnasNetSpace(MnasNetConfig(skeleton=Skeleton([16, 24, 40, 80, 160], [1, 2, 2, 3, 1], [1, 2, 2, 2, 1])))
    run_config = SearchConfig.of(target_flops=400_000_000, out=str(tmp_path), space=space.config.to_dict())
    write_json(tmp_path / "search.json", {"config": run_config.to_dict()})
    rng = np.random.default_rng(3)
    for trial, reward in enumerate([0.2, 0.9, 0.5, 0.7]):
        choices = space.sample(rng)
        append_trial(tmp_path / "trials.csv", {"trial": trial, "trial_id": "t", "choices": choices, "summary": "",
                                               "block_strings": space.decode(choices).block_strings,
                                               "flops": 1, "params": 1, "accuracy": reward, "reward": reward,
                                               "status": "ok", "reason": "", "source": "trained"})
    config = ProxyCheckConfig(search=SearchConfig.of(target_flops=400_000_000, out="x"), models=4,
                              from_run=str(tmp_path), references=False)
    chosen = select_candidates(config, num_classes=10)
    assert [c.name for c in chosen[:2]] == ["trial-0001", "trial-0003"] and len(chosen) == 4
    assert [c.kind for c in chosen] == ["from-run", "from-run", "sampled", "sampled"]
    assert all(len(c.spec.blocks) == 5 for c in chosen)  # the sampled ones too come from the run's space


@pytest.mark.parametrize("argv, words", [
    (["--models", "3"], "--models 3: at least 4"),
    (["--reference-steps", "2", "--proxy-width", "1"], "--reference-steps 2: the reference budget must be larger"),
    (["--from", "/nonexistent-run"], "--from /nonexistent-run: not a nas-search run"),
    (["--steps", "0"], "--steps"),
])
def test_bad_input_is_one_line_and_exit_2(argv, words, tmp_path, capsys):
    assert proxy_check_main(TINY + ["--out", str(tmp_path / "x"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_tiny_check_end_to_end_then_served_from_the_cache(tmp_path, capsys):
    out = tmp_path / "check"
    argv = TINY + ["--models", "4", "--reference-steps", "6", "--no-references", "--out", str(out)]
    assert proxy_check_main(argv) == 0
    rows = pd.read_csv(out / "proxy_check.csv")
    assert len(rows) == 4 * 3 and set(rows["budget"]) == {"proxy", "reference"}
    assert set(rows[rows["budget"] == "reference"]["steps"]) == {6} and set(rows[rows["budget"] == "proxy"]["steps"]) == {2}
    assert (rows["status"] == "ok").all() and (rows["source"] == "trained").all()
    figures = json.loads((out / "proxy_check.json").read_text())
    assert figures["ranked"] == 4 and figures["config"]["reference_steps"] == 6
    timing = pd.read_csv(out / "timings.csv")  # the whole check's wall time: at least its trainings'
    assert list(timing["stage"]) == ["check"] and list(timing["status"]) == ["finished"]
    assert timing.loc[0, "seconds"] >= figures["wall_seconds"]
    from nas.proxy_check.rank_stats import kendall_tau_b

    proxy, reference = (rows[(rows["budget"] == b) & (rows["repeat"] == 1)].set_index("model")["accuracy"]
                        for b in ("proxy", "reference"))
    expected = kendall_tau_b(proxy.to_numpy(), reference.loc[proxy.index].to_numpy())
    tau = figures["accuracy"]["kendall_tau_b"]["value"]
    assert (tau is None and np.isnan(expected)) or tau == pytest.approx(expected, abs=1e-4)  # from the csv's rows
    proxy_rows = rows[(rows["budget"] == "proxy") & (rows["repeat"] == 1)].set_index("model")
    assert (proxy_rows["train_loss"] > 0).all()
    for score, values in (("train_loss", -proxy_rows["train_loss"]), ("flops_alone", proxy_rows["flops"])):
        expected = kendall_tau_b(values.to_numpy(float), reference.loc[proxy_rows.index].to_numpy())
        value = figures[score]["kendall_tau_b"]["value"]
        assert (value is None and np.isnan(expected)) or value == pytest.approx(expected, abs=1e-4)
    printed = capsys.readouterr().out
    assert figures["verdict"] in printed and "Kendall tau-b" in printed
    from PIL import Image

    with Image.open(out / "proxy_check.png") as image:
        assert image.format == "PNG" and image.size == (600, 600)
    page = (out / "report.html").read_text()  # the check's page: its verdict and every training
    assert figures["verdict"] in page.replace("&#x27;", "'") and page.count("<tr class=\"ok\">") == 4 * 3
    assert 'http-equiv="refresh"' not in page  # finished: the page no longer reloads itself
    # the same check again: every training is served from the result cache, the figures are the same
    assert proxy_check_main(TINY + ["--models", "4", "--reference-steps", "6", "--no-references",
                                    "--out", str(tmp_path / "again")]) == 0
    again = pd.read_csv(tmp_path / "again" / "proxy_check.csv")
    assert (again["source"] == "cache").all()
    assert list(again["accuracy"]) == list(rows["accuracy"])
    assert json.loads((tmp_path / "again" / "proxy_check.json").read_text())["accuracy"] == figures["accuracy"]


def test_no_proxy_run_shares_the_reference_seed():
    import dataclasses

    from nas.proxy_check.candidates import reference_candidates
    from nas.proxy_check.driver import plan_jobs

    search = SearchConfig.of(target_flops=400_000_000, out="x")
    candidates = reference_candidates(search, 10)
    budgets = {"proxy": search.proxy, "reference": dataclasses.replace(search.proxy, steps=3000)}
    jobs = plan_jobs(candidates, repeats=3, seed=7, budgets=budgets)
    for model in range(len(candidates)):
        seeds = {p.budget + str(p.repeat): p.job.seed for p in jobs if p.model == model}
        assert len(set(seeds.values())) == 4  # reference and three proxy seeds, all different
    assert len({p.job.seed for p in jobs}) == len(jobs)
    assert {(p.budget, p.job.data, p.job.budget.steps) for p in jobs} == {("proxy", "proxy", 300),
                                                                          ("reference", "reference", 3000)}
    assert all(p.job.cache_seed == f"proxy-check:{p.job.seed}" for p in jobs)  # never a search's cache entry


def _reference_table(path, classes=3):
    """A reference table as benchmarks/ground_truth.py writes one: four networks of the space, the first
    trained on two seeds (its accuracies are their means)."""
    from search_spaces.mnasnet import MnasNetSpace

    space, rng = MnasNetSpace(), np.random.default_rng(3)
    rows = []
    for i, (val, test) in enumerate([(0.50, 0.40), (0.45, 0.55), (0.70, 0.65), (0.60, 0.75)]):
        spec = space.decode(space.sample(rng), 64, classes, name=f"net{i}")
        for seed, shift in ([(0, -0.02), (1, 0.02)] if i == 0 else [(0, 0.0)]):
            rows.append({"name": f"net{i}", "kind": "sampled", "seed": seed, "val_accuracy": val + shift,
                         "test_accuracy": test + shift, "spec": json.dumps(spec.to_dict())})
    pd.DataFrame(rows).to_csv(path, index=False)


def test_a_reference_table_is_scored_without_training_its_networks_again(tmp_path, capsys):
    from nas.proxy_check.rank_stats import kendall_tau_b

    _reference_table(tmp_path / "table.csv")
    out = tmp_path / "check"
    assert proxy_check_main(TINY + ["--reference-table", str(tmp_path / "table.csv"), "--repeats", "1",
                                    "--out", str(out)]) == 0
    rows = pd.read_csv(out / "proxy_check.csv")
    proxy, reference = (rows[rows["budget"] == b].set_index("model") for b in ("proxy", "reference"))
    assert len(proxy) == 4 and (proxy["source"] == "trained").all() and (proxy["steps"] == 2).all()
    assert (reference["source"] == "table").all() and list(reference["name"]) == ["net0", "net1", "net2", "net3"]
    assert np.allclose(reference["accuracy"], [0.40, 0.55, 0.65, 0.75])  # test accuracy, net0's the mean of two
    figures = json.loads((out / "proxy_check.json").read_text())
    expected = kendall_tau_b(proxy["accuracy"], reference["accuracy"])
    assert figures["accuracy"]["kendall_tau_b"]["value"] == pytest.approx(expected, abs=1e-4)
    held_out = kendall_tau_b(proxy["accuracy"], [0.50, 0.45, 0.70, 0.60])
    assert figures["held_out_accuracy"]["kendall_tau_b"]["value"] == pytest.approx(held_out, abs=1e-4)
    assert "reference_mean" not in figures["seconds"] and figures["config"]["reference_table"].endswith("table.csv")
    printed = capsys.readouterr().out
    assert "the table's held-out accuracy" in printed and "the real trainings of table.csv" in printed
    counters = re.findall(r"^\[ *(\d+)/(\d+)\]", printed, flags=re.M)  # the table's rows are not trainings
    assert sorted(int(done) for done, _ in counters) == [1, 2, 3, 4] and {total for _, total in counters} == {"4"}


@pytest.mark.slow  # a command in its own process with its own Ray instance, stopped mid-run
def test_ctrl_c_mid_check_says_interrupted_and_writes_no_verdict(tmp_path):
    """Ctrl-C while trainings remain: exit 130 and "interrupted", not a report that counts the trainings
    never started as failed models (Tune's result grid holds only the trials it had started)."""
    import signal
    import subprocess
    import sys
    import time

    _reference_table(tmp_path / "table.csv")
    out = tmp_path / "check"
    argv = [sys.executable, "-c", "import sys; from nas.cli.proxy_check import main; sys.exit(main())", *TINY,
            "--reference-table", str(tmp_path / "table.csv"), "--repeats", "6", "--concurrency", "1",
            "--no-cache", "--out", str(out)]
    argv[argv.index("--steps") + 1] = "60"  # longer trainings, so that Ctrl-C lands mid-check
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    csv, deadline = out / "proxy_check.csv", time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if csv.exists() and (pd.read_csv(csv)["source"] == "trained").any():  # one training of eight done
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    printed, err = process.communicate(timeout=240)
    assert (pd.read_csv(csv)["source"] == "trained").sum() < 24  # 4 models x 6 repeats: far from finished
    assert process.returncode == 130, err[-2000:]
    assert "nas-proxy-check: interrupted; finished work is kept" in err
    assert "left out (failed)" not in printed and not (out / "proxy_check.json").exists()


@pytest.mark.parametrize("problem, words", [
    ("missing", "no such file"), ("columns", "not a reference table (no column"),
    ("classes", "trained on 10 classes, --data has 3"), ("with-from", "give one"),
])
def test_a_bad_reference_table_is_one_line_and_exit_2(problem, words, tmp_path, capsys):
    table = tmp_path / "table.csv"
    if problem == "columns":
        table.write_text("name,accuracy\nnet0,0.5\n")
    elif problem in ("classes", "with-from"):
        _reference_table(table, classes=10 if problem == "classes" else 3)
    extra = ["--from", str(tmp_path)] if problem == "with-from" else []
    assert proxy_check_main(TINY + ["--reference-table", str(table), "--out", str(tmp_path / "x"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
