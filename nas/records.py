"""The run directory's own records: ``trials.csv`` (appended as trials finish), ``best_b0.json``, the
controller state, and the Pareto plot. These are what ``--resume`` trusts."""
from __future__ import annotations

import csv
import io
import json
import os
import pickle
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from nas.errors import UserInputError
from nas.files import atomic_path, atomic_write

# later columns are appended, never reordered (shared/DESIGN.md). ``status``: ok | failed | stopped (by the
# scheduler, at ``steps``) | screened (by the FLOPs window, never trained); ``source``: trained | cache | screened;
# ``latency_ms``: the latency predicted by the search's table (empty without one)
COLUMNS = ["trial", "trial_id", "choices", "summary", "block_strings", "flops", "params", "accuracy", "reward",
           "status", "reason", "seconds", "train_seconds", "images_per_second", "final_loss", "source", "steps",
           "latency_ms"]


def _csv_row(record: dict[str, Any]) -> dict[str, Any]:
    values = dict(record)
    values["choices"] = json.dumps(list(record["choices"]))
    values["block_strings"] = " ".join(record.get("block_strings") or [])
    return values


def append_trial(path: Path, row: dict[str, Any]) -> None:
    """Append one finished trial to trials.csv (with a header on first write), flushed to disk at once."""
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(_csv_row(row))
        handle.flush()
        os.fsync(handle.fileno())


def rewrite_trials(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace trials.csv with ``records`` in one atomic step (used when a resume rescores the trials)."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow(_csv_row(record))
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


def save_state(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, pickle.dumps(state))


def load_state(path: Path) -> dict[str, Any] | None:
    """A pickled state, or None when there is none; a file that cannot be unpickled raises StateError."""
    if not path.exists():
        return None
    try:
        with open(path, "rb") as handle:
            state = pickle.load(handle)
    except Exception as exc:  # noqa: BLE001 - any unreadable pickle: truncated, garbage, wrong classes
        raise StateError(f"{path}: cannot read it ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise StateError(f"{path}: holds a {type(state).__name__}, not a saved state")
    return state


class StateError(ValueError):
    """A saved state file that cannot be read."""


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")


def pareto_front(points: Iterable[tuple[float, float]]) -> list[int]:
    """Indices of the points (flops, accuracy) not dominated by another (fewer FLOPs and higher accuracy)."""
    points = list(points)
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -float("inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


AXES = {"flops": (1e6, "M", "FLOPs (M, multiply-adds at the target resolution)"),
        "latency_ms": (1.0, " ms", "latency (ms, predicted by the latency table)")}


def plot_pareto(frame: pd.DataFrame, target: float, path: Path, title: str = "",
                window: tuple[float, float] | None = None, x: str = "flops") -> Path | None:
    """Accuracy against FLOPs (or, ``x="latency_ms"``, predicted latency) of the trained candidates, the target
    marked and the Pareto front highlighted; candidates stopped early drawn apart, screened ones as ticks
    along the bottom, the pre-screen's window shaded."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale, unit, label = AXES[x]
    cost = pd.to_numeric(ok[x], errors="coerce").fillna(0).to_numpy() / scale
    accuracy = ok["accuracy"].astype(float).to_numpy()
    front = pareto_front(zip(cost, accuracy))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.scatter(cost, accuracy, s=22, color="#9aa7b8", label="trained")
    stopped = frame[frame["status"] == "stopped"]
    if not stopped.empty:
        ax.scatter(pd.to_numeric(stopped[x], errors="coerce") / scale, stopped["accuracy"].astype(float), s=22,
                   marker="x", color="#8c6bb1", label="stopped early (last rung)")
    screened = frame[frame["status"] == "screened"]
    if not screened.empty:
        ax.scatter(pd.to_numeric(screened[x], errors="coerce") / scale, [0.0] * len(screened), s=30, marker="|",
                   color="#bbbbbb", label=f"screened, not trained ({len(screened)})", clip_on=False)
    if window is not None and window != (0.0, float("inf")):
        largest = float(pd.to_numeric(frame[x], errors="coerce").max())
        right = min(window[1] * target, max(largest, target) * 1.1)
        ax.axvspan(window[0] * target / scale, right / scale, color="#2e4057", alpha=0.06, label="window")
    ordered = sorted(front, key=lambda i: cost[i])
    ax.plot(cost[ordered], accuracy[ordered], "-o", color="#d1495b", ms=6, label="Pareto front")
    ax.axvline(target / scale, color="#2e4057", ls="--", lw=1.2, label=f"target {target / scale:g}{unit}")
    best = ok["reward"].astype(float).idxmax()
    ax.scatter([float(ok.loc[best, x] or 0) / scale], [float(ok.loc[best, "accuracy"])], s=140, marker="*",
               color="#edae49", edgecolor="black", zorder=5, label="best reward")
    ax.set_xlabel(label)
    ax.set_ylabel("proxy accuracy (held out)")
    ax.set_title(title or "Search results")
    save_plot(fig, ax, path)
    return path


def save_plot(fig: Any, ax: Any, path: Path) -> None:
    """Grid, legend, tight layout, then write the figure atomically and free it."""
    import matplotlib.pyplot as plt

    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
