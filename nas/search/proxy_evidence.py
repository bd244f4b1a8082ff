"""What is known of a proxy's ranking: the measured Kendall taus of proxies against real training
(``proxy_evidence.csv``, written by ``benchmarks/proxy_truth.py`` from nas-proxy-check runs against the tables
of ``benchmarks/ground_truth.py``), and the line nas-search says at its start about its own proxy."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from nas.training.proxy_settings import ProxySettings
from nas.training.recipe import PROXY_LR

EVIDENCE = Path(__file__).with_name("proxy_evidence.csv")
FIDELITY = ("steps", "epochs", "batch_size", "resolution", "width", "optimizer", "lr")


def fidelity(proxy: ProxySettings) -> dict[str, object]:
    """The fields that make two proxies the same training (the data and seed aside); lr as it takes effect."""
    values = {name: getattr(proxy, name) for name in FIDELITY}
    values["lr"] = proxy.lr or PROXY_LR[proxy.optimizer]
    return values


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(row: pd.Series, wanted: dict[str, object]) -> bool:
    """Whether a row of the evidence is the proxy of ``wanted`` (None there is a blank cell here)."""
    for name, value in wanted.items():
        mine = row[name]
        if _missing(value) or _missing(mine):
            if not (_missing(value) and _missing(mine)):
                return False
        elif isinstance(value, str):
            if str(mine) != value:
                return False
        elif not math.isclose(float(mine), float(value)):
            return False
    return True


def known_ranking(proxy: ProxySettings, path: Path = EVIDENCE) -> pd.DataFrame:
    """The measured rows of this proxy's fidelity: every data set and score."""
    if not path.is_file():
        return pd.DataFrame()
    table = pd.read_csv(path)
    wanted = fidelity(proxy)
    return table[[_same(row, wanted) for _, row in table.iterrows()]]


def evidence_line(proxy: ProxySettings, path: Path = EVIDENCE) -> str:
    """One line for the search's start: how well this proxy is known to rank networks after real training."""
    rows = known_ranking(proxy, path)
    rows = rows[rows["score"] == "accuracy"] if len(rows) else rows
    if not len(rows):
        return (f"proxy ({proxy.describe()}): how well it ranks networks after real training is not measured; "
                f"nas-proxy-check measures it (docs/proxy-check.md)")
    parts = [f"{row['data']} tau {row['tau']:.2f} [{row['low90']:.2f}, {row['high90']:.2f}] over {int(row['models'])} "
             f"networks" for _, row in rows.iterrows()]
    return (f"proxy ({proxy.describe()}): against nas-train's recipe it ranked {'; '.join(parts)} (Kendall tau, "
            f"90% interval); on other data nas-proxy-check --reference-table measures it")
