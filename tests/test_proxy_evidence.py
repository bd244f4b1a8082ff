"""What nas-search says at its start of how well its proxy is known to rank real trainings."""
import json

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


def test_the_shipped_evidence_reads(tmp_path):
    if EVIDENCE.is_file():
        table = pd.read_csv(EVIDENCE)
        assert {"data", "score", "tau", "low90", "high90", "models"} <= set(table.columns)
        evidence_line(ProxySettings())


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
