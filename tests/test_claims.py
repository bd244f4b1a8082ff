"""Every figure of docs/claims.csv recomputed from the results file it names: the page still says it (its context,
whitespace aside), and the file gives it to the last digit written (half a unit either way).

A row: ``page``, ``context`` (the words around the figure, as on the page), ``figure`` (as written, without sign
or unit), ``file`` (under benchmarks/results) and ``value``, an expression over the file's helpers below:
``cell(column, **where)`` one value of a CSV, ``mean``/``spread``/``sd`` of a network's test accuracies in a runs
CSV (``seeds=[...]``), ``paired(network, reference, column)`` the paired t-interval over the seeds both have
(benchmarks/real_data.py's), ``key(...)`` a JSON value, ``log_seconds(pattern)`` a duration a log prints.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from benchmarks.real_data import paired_to

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CLAIMS = ROOT / "docs" / "claims.csv"


def _rows() -> list[dict[str, str]]:
    with CLAIMS.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _flat(text: str) -> str:
    return " ".join(text.split())


def _helpers(path: Path) -> dict[str, Any]:
    """The functions a claim's expression may call, bound to its file."""
    def frame() -> pd.DataFrame:
        return pd.read_csv(path)

    def where(**equal: Any) -> pd.DataFrame:
        table = frame()
        for column, value in equal.items():
            table = table[table[column] == value]
        return table

    def cell(column: str, **equal: Any) -> float:
        (value,) = where(**equal)[column].tolist()
        return float(value)

    def accuracies(network: str, seeds: list[int] | None = None) -> pd.Series:
        rows = where(network=network)
        if seeds is not None:
            rows = rows[rows["seed"].isin(seeds)]
        return rows["test_accuracy"]

    def paired(network: str, reference: str, column: str, seeds: list[int] | None = None) -> float:
        rows = frame()
        if seeds is not None:
            rows = rows[rows["seed"].isin(seeds)]
        (value,) = paired_to(rows[rows["network"].isin([network, reference])], reference)[column].tolist()
        return float(value)

    def key(*path_: str) -> float:
        value: Any = json.loads(path.read_text())
        for part in path_:
            value = value[int(part) if isinstance(value, list) else part]
        return float(value)

    def log_seconds(pattern: str) -> float:
        found = re.search(pattern, path.read_text())
        assert found, f"{path.name}: no line matches {pattern!r}"
        parts = found.groupdict()
        return (float(parts.get("h") or 0) * 3600 + float(parts.get("m") or 0) * 60
                + float(parts.get("s") or 0))

    return {"cell": cell, "where": where, "mean": lambda n, seeds=None: float(accuracies(n, seeds).mean()),
            "spread": lambda n, seeds=None: float(accuracies(n, seeds).max() - accuracies(n, seeds).min()),
            "sd": lambda n, seeds=None: float(accuracies(n, seeds).std()), "paired": paired, "key": key,
            "log_seconds": log_seconds, "len": len, "abs": abs, "round": round}


def _half_unit(figure: str) -> float:
    decimals = len(figure.split(".")[1]) if "." in figure else 0
    return 0.5 * 10 ** -decimals + 1e-9


def test_the_claims_table_is_well_formed():
    rows = _rows()
    assert rows and set(rows[0]) == {"page", "context", "figure", "file", "value"}
    pages = {row["page"] for row in rows}
    assert {"README.md", "docs/results-real-data.md"} <= pages
    for row in rows:
        assert re.fullmatch(r"\d+(\.\d+)?", row["figure"]), row
        assert (RESULTS / row["file"]).is_file(), f"{row['file']}: no such results file"


@pytest.mark.parametrize("row", _rows(), ids=lambda r: f"{r['page']}:{r['figure']}:{r['context'][:40]}")
def test_a_figure_is_what_its_file_gives(row):
    page = _flat((ROOT / row["page"]).read_text())
    context = _flat(row["context"])
    assert context in page, f"{row['page']} no longer says: {context!r}"
    digits = re.sub(r"(?<=\d),(?=\d{3})", "", context)  # 5,288,548 as written: the figure 5288548
    assert row["figure"] in digits, row
    value = eval(row["value"], {"__builtins__": {}}, _helpers(RESULTS / row["file"]))  # our own table
    assert abs(abs(value) - float(row["figure"])) <= _half_unit(row["figure"]), (row["value"], value)
    # a minus sign before the figure, not a range's dash after another number (0.72-0.91)
    negative = re.search(rf"(?<![\d.])[-−]{re.escape(row['figure'])}(?![\d])", digits) is not None
    assert negative == (value < -_half_unit(row["figure"])), f"the sign of {row['figure']} in {context!r}: {value}"
