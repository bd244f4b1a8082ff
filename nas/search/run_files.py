"""The files of a search's run directory that ``--resume`` trusts: ``trials.csv`` (appended as trials finish,
checked and read back), the saved controller state, and the JSON files."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from nas.errors import UserInputError
from nas.files import append_csv_rows, atomic_path, atomic_write
from nas.search.trial_record import COLUMNS, TrialRecord, csv_row, from_csv_row

ORPHANED_FILES = ("trials.csv", "trials.csv.torn", "controller.pt", "best_b0.json", "pareto.png", "report.html")


def append_trial(path: Path, row: dict[str, Any]) -> None:
    """Append one finished trial to trials.csv (with a header on first write), flushed to disk at once."""
    append_trials(path, [row])


def append_trials(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append finished trials to trials.csv in one write (a header first on a new file), flushed to disk."""
    append_csv_rows(path, COLUMNS, (csv_row(row) for row in rows))


def rewrite_trials(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace trials.csv with ``records`` in one atomic step (used when a resume rescores the trials)."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow(csv_row(record))
    atomic_write(path, buffer.getvalue())


def _parse_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def repair_trials(path: Path) -> str | None:
    """Check trials.csv before a resume trusts it; set a torn last row aside. Returns a warning, or None.

    A kill or a full disk during an append can leave the last row cut short: it is moved to
    ``trials.csv.torn`` and the intact rows are kept (that trial is trained again). Any other malformed
    row is a user error that names the file and the line.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None
    text = path.read_bytes().decode("utf-8", errors="replace")
    rows = _parse_rows(text)
    header = rows[0] if rows else []
    if not header or header[0] != "trial" or "choices" not in header:
        raise UserInputError(f"{path}: line 1 is not the header of a nas-search trials.csv")
    torn = not text.endswith("\n") or (len(rows) > 1 and len(rows[-1]) != len(header))
    for number, row in enumerate(rows[1:-1] if torn else rows[1:], start=2):
        problem = _row_problem(row, header)
        if problem:
            raise UserInputError(f"{path}: line {number} is malformed ({problem}); fix or delete that line")
    if not torn:
        return None
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows[:-1])
    intact = buffer.getvalue()
    tail = text[len(intact):] if text.startswith(intact) else ",".join(rows[-1])
    with open(path.with_name(path.name + ".torn"), "a") as handle:
        handle.write(tail + "\n")
    atomic_write(path, intact)
    return (f"warning: the last row of {path} was cut short (a kill or a full disk during a write); "
            f"set aside to {path.name}.torn, {len(rows) - 2} intact rows kept")


def _row_problem(row: list[str], header: list[str]) -> str | None:
    if len(row) != len(header):
        return f"{len(row)} fields, the header has {len(header)}"
    values = dict(zip(header, row))
    try:
        int(values["trial"])
        choices = json.loads(values["choices"])
        if not isinstance(choices, list) or not all(isinstance(c, int) for c in choices):
            return "choices is not a list of integers"
        for name in ("flops", "params", "accuracy", "reward"):
            if name in values:
                float(values[name])
    except (ValueError, KeyError) as exc:
        return str(exc)
    return None


def read_trials(path: Path) -> pd.DataFrame:
    """trials.csv as a DataFrame (empty, with the columns, when there is none yet)."""
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    frame["choices"] = frame["choices"].map(lambda text: tuple(json.loads(text)))
    return frame


def read_records(path: Path) -> list[TrialRecord]:
    """The records of trials.csv (none when there is no file yet)."""
    if not path.exists() or path.stat().st_size == 0:
        return []
    with open(path, newline="") as handle:
        return [from_csv_row(row) for row in csv.DictReader(handle)]


STATE_FILE = "controller.pt"  # the controller's state (before: controller.pkl, a pickle, no longer loaded)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write a state (tensors, numbers, strings and containers of them) with ``torch.save``, atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path) -> dict[str, Any] | None:
    """A saved state, or None when there is none. Read with ``torch.load(weights_only=True)``, which builds
    tensors and plain containers only: a file received from someone else cannot run code. A file that cannot
    be read so raises StateError."""
    if not path.exists():
        return None
    import torch

    try:
        state = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file: truncated, garbage, objects refused
        raise StateError(f"{path}: cannot read it ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(state, dict):
        raise StateError(f"{path}: holds a {type(state).__name__}, not a saved state")
    return state


class StateError(ValueError):
    """A saved state file that cannot be read."""


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")


def set_aside_orphaned_run(run_dir: Path) -> Path:
    """Move the files of a run that lost its ``search.json`` (which cannot be resumed) into a new
    ``orphaned-N/`` inside ``run_dir``, so that a new search can start there; that folder."""
    index = 1
    while (run_dir / f"orphaned-{index}").exists():
        index += 1
    kept = run_dir / f"orphaned-{index}"
    kept.mkdir()
    for name in ORPHANED_FILES:
        if (run_dir / name).exists():
            (run_dir / name).rename(kept / name)
    return kept
