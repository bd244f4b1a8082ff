"""Resident memory of the trial worker over a long search: does the reused Ray worker grow per trial?

    python benchmarks/worker_memory.py [--trials 50] [--steps 30] [--no-cache]

Runs ``nas-search`` (its own process, a fresh cache, the default synthetic proxy data) and samples, every
half second, the resident memory (RSS) of Ray's worker processes (``ray::...``) and of the driver. Prints
the trial worker's RSS after trials 1, 5, 10, 20, ... and the growth per trial over the second half (a
least-squares slope), which should be about 0 for a 500-trial search to hold steady.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command line, RSS in MiB), from /proc (Linux)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = float(fields.get("VmRSS", "0 kB").split()[0]) / 1024
        out[int(entry.name)] = (int(fields["PPid"]), cmdline, rss)
    return out


def worker_rss(driver: int) -> tuple[float, float]:
    """(largest RSS of a Ray worker under the driver's process tree, the driver's RSS), in MiB."""
    table = _processes()
    below, frontier = set(), {driver}
    while frontier:
        frontier = {pid for pid, (parent, _, _) in table.items() if parent in frontier} - below
        below |= frontier
    workers = [table[pid][2] for pid in below if table[pid][1].startswith("ray::")]
    return (max(workers) if workers else 0.0), table.get(driver, (0, "", 0.0))[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        env = dict(os.environ, NAS_CACHE_DIR=str(Path(tmp) / "cache"))
        argv = [sys.executable, "-c", "import sys; from nas.cli import search_main; sys.exit(search_main())",
                "--target-flops", "400M", "--trials", str(args.trials), "--steps", str(args.steps),
                "--controller", "random", "--flops-window", "0,inf", "--out", str(out)]
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        driver = process.pid
        csv = out / "trials.csv"
        after: dict[int, tuple[float, float]] = {}
        peak = 0.0
        print(f"{args.trials} trials of {args.steps} steps (random controller, default synthetic data)")
        print(f"{'after trial':>11} {'worker RSS MiB':>15} {'driver RSS MiB':>15}", flush=True)
        while process.poll() is None:
            rows = max(0, len(csv.read_text().splitlines()) - 1) if csv.exists() else 0
            worker, own = worker_rss(driver)
            peak = max(peak, worker)
            if rows and worker:
                if rows - 1 in after and (rows - 1) % 5 == 0:  # printed as the search goes
                    print(f"{rows - 1:>11} {after[rows - 1][0]:>15.0f} {after[rows - 1][1]:>15.0f}", flush=True)
                after[rows] = (worker, own)  # the latest sample after ``rows`` trials
            time.sleep(0.5)
        if process.returncode != 0:
            raise SystemExit(f"nas-search exited {process.returncode}")
    last = max(after)
    print(f"{last:>11} {after[last][0]:>15.0f} {after[last][1]:>15.0f}")
    half = sorted(n for n in after if n >= max(after) // 2)
    if len(half) >= 2:
        slope = np.polyfit(half, [after[n][0] for n in half], 1)[0]
        print(f"worker growth over the second half: {slope:+.2f} MiB per trial; peak {peak:.0f} MiB")


if __name__ == "__main__":
    main()
