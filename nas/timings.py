"""Each command's own wall times, kept in its run directory: ``timings.csv``, one row per stage (the search, the
final stage, a training, a check), appended when the stage ends, finished, interrupted or failed.

Beside the seconds, a row says what else the machine was doing: the CPUs the process may use, the 1-minute load
average when the stage started (the work already running beside it; near 0: it started alone) and the share of
the machine's CPU time that was busy over the stage (this command's own work included: a stage that keeps one
of two CPUs busy alone reads about 0.5). Documents quote wall times from these rows (benchmarks/results/).
"""
from __future__ import annotations

import contextlib
import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

TIMINGS_FILE = "timings.csv"
COLUMNS = ["command", "stage", "started", "seconds", "status", "cpus", "load_at_start", "machine_busy"]


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU time of the whole machine since boot, from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return sum(fields) - idle, sum(fields)


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity (``taskset``, a container's cpuset), else the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform (macOS, Windows)
        return os.cpu_count() or 1


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def append_timing(run_dir: str | Path, row: dict) -> None:
    """Add one stage's row to ``run_dir``'s timings.csv (written with its header when new)."""
    path = Path(run_dir) / TIMINGS_FILE
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({name: row.get(name, "") for name in COLUMNS})


@dataclass
class Stage:
    """The stage being timed; set ``status`` when it ends otherwise than finished (e.g. "interrupted": a
    search stopped by Ctrl-C returns rather than raises)."""
    status: str | None = None


@contextlib.contextmanager
def timed(run_dir: str | Path, command: str, stage: str) -> Iterator[Stage]:
    """Time the block as ``stage`` of ``command`` and append its row to ``run_dir``/timings.csv when it ends
    (status finished, interrupted or failed). A row that cannot be written never hides the block's own error."""
    started, clock, load, jiffies = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter(), _load(), _cpu_jiffies()
    timing, raised = Stage(), True
    try:
        yield timing
        raised = False
    except KeyboardInterrupt:
        timing.status = "interrupted"
        raise
    finally:
        status = timing.status or ("failed" if raised else "finished")
        after = _cpu_jiffies()
        busy = None
        if jiffies and after and after[1] > jiffies[1]:
            busy = round((after[0] - jiffies[0]) / (after[1] - jiffies[1]), 3)
        row = {"command": command, "stage": stage, "started": started,
               "seconds": round(time.perf_counter() - clock, 2), "status": status, "cpus": usable_cpus(),
               "load_at_start": load, "machine_busy": busy}
        if raised:
            with contextlib.suppress(OSError):
                append_timing(run_dir, row)
        else:
            append_timing(run_dir, row)  # a full disk here is the command's own error
