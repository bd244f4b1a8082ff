"""What nas-search says at its start of how well its proxy is known to rank real trainings."""
import json
from pathlib import Path

import pandas as pd

from nas.search.proxy_evidence import EVIDENCE, evidence_line, fidelity, known_ranking
from nas.training.proxy_settings import ProxySettings


def _evidence(tmp_path, **changes):
    row = {"data": "cifar10", "score": "accuracy", "models": 12, "reference": "ground_truth_cifar10.csv",
           **fidelity(ProxySettings()), "tau": 0.52, "low90": 0.2, "high90": 0.8, "seconds_per_model": 60.0,
           "check": "runs/x"}
    path = tmp_path / "evidence.csv"
    pd.DataFrame([row, {**row, "score": "train_loss", "tau": 0.6}, {**row, **changes, "data": "clothing10"}]).to_csv(
        path, index=False)
    return path


def test_a_measured_proxy_is_said_with_its_tau_and_interval(tmp_path):
    path = _evidence(tmp_path, steps=600)
    line = evidence_line(ProxySettings(data="npz:mine.npz", seed=3), path)  # data and seed are not fidelity
    assert "cifar10 tau 0.52 [0.20, 0.80] over 12 networks" in line and "clothing10" not in line
    assert len(known_ranking(ProxySettings(), path)) == 2
    assert evidence_line(ProxySettings(lr=0.003), path) == line  # the default lr, given: the same proxy


def test_an_unmeasured_proxy_says_so(tmp_path):
    path = _evidence(tmp_path, steps=600)
    for proxy in (ProxySettings(width=0.5), ProxySettings(steps=100), ProxySettings(optimizer="sgd")):
        assert "not measured" in evidence_line(proxy, path)
    assert "not measured" in evidence_line(ProxySettings(), tmp_path / "absent.csv")


RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
SCORE_KEYS = {"accuracy": "accuracy", "accuracy-2-seeds": "averaged_proxy", "train_loss": "train_loss",
              "flops": "flops_alone"}


def _check_file(row) -> dict:
    """The nas-proxy-check figures an evidence row was read from, as kept in benchmarks/results."""
    return json.loads((RESULTS / f"proxy_vs_truth_{row['data']}_w{float(row['width'])}.json").read_text())


def test_the_shipped_evidence_is_what_its_checks_measured():
    """Every row of the shipped evidence holds the tau, interval and model count of the check it names."""
    table = pd.read_csv(EVIDENCE)
    assert len(table) >= 16 and set(table["data"]) == {"cifar10", "clothing10"}
    for _, row in table.iterrows():
        figures = _check_file(row)
        tau = figures[SCORE_KEYS[row["score"]]]["kendall_tau_b"]
        assert (row["tau"], row["low90"], row["high90"]) == (tau["value"], *tau["interval90"]), dict(row)
        assert row["models"] == figures["ranked"] and row["resolution"] == figures["config"]["proxy"]["resolution"]


def test_the_search_says_the_default_proxys_measured_tau():
    """The line a default search starts with gives the tau and interval its check measured (read from the
    check's own file here, not from the evidence table)."""
    proxy = ProxySettings()
    figures = _check_file({"data": "cifar10", "width": proxy.width})
    assert figures["config"]["proxy"]["steps"] == proxy.steps and figures["config"]["proxy"]["resolution"] == proxy.resolution
    tau = figures["accuracy"]["kendall_tau_b"]
    line = evidence_line(proxy)
    assert (f"cifar10 tau {tau['value']:.2f} [{tau['interval90'][0]:.2f}, {tau['interval90'][1]:.2f}] over "
            f"{figures['ranked']} networks") in line
    assert "clothing10" not in line  # measured at 64 px: another proxy


def test_proxy_truth_collects_a_check_against_a_table(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from proxy_truth import rows_of

    check = tmp_path / "check"
    check.mkdir()
    tau = {"kendall_tau_b": {"value": 0.5, "interval90": [0.1, 0.9]}}
    (check / "proxy_check.json").write_text(json.dumps({
        "config": {"proxy": {**ProxySettings(data="cifar10:../data/cifar10", width=0.5).to_dict()},
                   "reference_table": "benchmarks/results/ground_truth_cifar10.csv"},
        "ranked": 10, "accuracy": tau, "train_loss": tau, "flops_alone": tau, "seconds": {"proxy_mean": 30.0}}))
    rows = rows_of(check)
    assert [r["score"] for r in rows] == ["accuracy", "train_loss", "flops"]
    assert rows[0]["data"] == "cifar10" and rows[0]["width"] == 0.5 and rows[-1]["seconds_per_model"] == 0.0
