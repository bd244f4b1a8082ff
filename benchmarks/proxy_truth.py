"""Proxies against real training: collect nas-proxy-check runs made against ground-truth tables into the
evidence nas-search reads at its start (``nas/search/proxy_evidence.csv``), and print them as one table.

    nas-proxy-check --target-flops 9M --resolution 32 --data cifar10:../shared/data/cifar10 \
        --reference-table benchmarks/results/ground_truth_cifar10.csv --repeats 2 --out runs/proxy-vs-truth/default
    python -m benchmarks proxy_truth runs/proxy-vs-truth/*

Each check (its ``proxy_check.json``) gives one row per score of its proxy: ``accuracy`` (one proxy run's
held-out accuracy, the first seed), ``accuracy-2-seeds`` (averaged over two seeds), ``train_loss`` (the proxy
run's mean training loss, lower ranks higher) and ``flops`` (FLOPs alone: no training), each with Kendall's
tau against the table's test accuracy, its 90% bootstrap interval and the proxy's seconds per network. A check
of the same proxy fidelity on the same data replaces the earlier rows.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from nas.search.proxy_evidence import EVIDENCE, FIDELITY, fidelity
from nas.training.proxy_settings import ProxySettings

SCORES = {"accuracy": "accuracy", "accuracy-2-seeds": "averaged_proxy", "train_loss": "train_loss",
          "flops": "flops_alone"}


def data_name(text: str) -> str:
    """``cifar10:../shared/data/cifar10`` -> ``cifar10``; ``folder:.../clothing10`` -> ``clothing10``."""
    return text.split(":", 1)[-1].rstrip("/").split("/")[-1] or text


def rows_of(check: Path) -> list[dict]:
    """The evidence rows of one nas-proxy-check run against a reference table (none for another check)."""
    figures = json.loads((check / "proxy_check.json").read_text())
    config = figures["config"]
    if not config.get("reference_table"):
        return []
    proxy = ProxySettings(**{k: v for k, v in config["proxy"].items() if k in ProxySettings.__dataclass_fields__})
    seconds = figures.get("seconds", {}).get("proxy_mean")
    rows = []
    for score, key in SCORES.items():
        if key not in figures:
            continue
        tau = figures[key]["kendall_tau_b"]
        if tau["value"] is None:
            continue
        rows.append({"data": data_name(proxy.data), "score": score, "models": figures["ranked"],
                     "reference": Path(config["reference_table"]).name, **fidelity(proxy),
                     "tau": tau["value"], "low90": tau["interval90"][0], "high90": tau["interval90"][1],
                     "seconds_per_model": seconds if score != "flops" else 0.0, "check": str(check)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checks", nargs="+", help="nas-proxy-check output directories")
    parser.add_argument("--out", default=str(EVIDENCE))
    args = parser.parse_args()
    new = [row for check in map(Path, args.checks) if (check / "proxy_check.json").is_file() for row in rows_of(check)]
    out = Path(args.out)
    table = pd.concat([pd.read_csv(out), pd.DataFrame(new)]) if out.is_file() else pd.DataFrame(new)
    key = ["data", "score", *FIDELITY]
    table = table.astype({"epochs": float, "steps": float}).drop_duplicates(key, keep="last")
    table.to_csv(out, index=False)
    print(table.drop(columns=["check"]).to_string(index=False))


if __name__ == "__main__":
    main()
