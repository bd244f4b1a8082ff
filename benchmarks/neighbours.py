"""What the load benchmarks (train_load, search_load, trial_load) share: a CPU-bound neighbour, one busy
Python loop in its own process, and how their tables are written."""
from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pandas as pd

BUSY_LOOP = "while True:\n    pass\n"


@contextlib.contextmanager
def busy_neighbour(busy: bool) -> Iterator[None]:
    """With ``busy``, a busy loop runs beside the block (one core's worth of other work), stopped after it."""
    neighbour = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if busy else None
    try:
        yield
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()


def write_table(table: pd.DataFrame, out: Path) -> None:
    """The benchmark's table to ``out`` (a CSV), and printed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(table.to_string(index=False))
    print(f"written to {out}")
