"""A reference table: networks already trained for real (``benchmarks/ground_truth.py`` writes one), so that a
proxy is scored against real training without training the references again (``--reference-table FILE``).

One row per training: ``name``, ``kind``, ``seed``, ``val_accuracy``, ``test_accuracy`` and ``spec`` (the whole
B0 spec as JSON) at least. A network trained on several seeds is one model whose accuracies are the means.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nas.errors import UserInputError
from search_spaces.spec import ArchSpec, SpecError, load_spec

REQUIRED = ("name", "seed", "val_accuracy", "test_accuracy", "spec")


@dataclass(frozen=True)
class KnownModel:
    """One network of the table: its spec and what real training gave it (means over its seeds)."""

    name: str
    kind: str
    spec: ArchSpec
    val_accuracy: float
    test_accuracy: float | None
    seeds: int


def read_reference_table(path: str | Path, flag: str = "--reference-table") -> list[KnownModel]:
    """The table's networks in the table's order; a one-line UserInputError when the file is not such a table."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{flag} {path}: no such file")
    try:
        rows = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserInputError(f"{flag} {path}: not a CSV table ({str(error).splitlines()[0]})") from None
    missing = [c for c in REQUIRED if c not in rows.columns]
    if missing:
        raise UserInputError(f"{flag} {path}: not a reference table (no column {', '.join(missing)}; "
                             f"benchmarks/ground_truth.py writes one)")
    models = []
    for name, group in rows.groupby("name", sort=False):
        try:
            spec = load_spec(json.loads(group["spec"].iloc[0]))
        except (ValueError, SpecError) as error:
            raise UserInputError(f"{flag} {path}: the spec of {name} does not read ({error})") from None
        test = pd.to_numeric(group["test_accuracy"], errors="coerce").mean()
        models.append(KnownModel(str(name), str(group["kind"].iloc[0]) if "kind" in group else "table",
                                 spec.replace(name=str(name)), float(group["val_accuracy"].mean()),
                                 None if math.isnan(test) else float(test), int(group["seed"].nunique())))
    if not models:
        raise UserInputError(f"{flag} {path}: the table has no rows")
    return models
