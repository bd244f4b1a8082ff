"""nas-train beside another CPU-bound job: its default threads against ``--cpus-per-worker 1``.

    python -m benchmarks train_load [--data cifar10:../shared/data/cifar10] [--epochs 3]

Runs ``nas-train`` as a user would (a fresh process, a local Ray instance, EfficientNet-B0 at 32 px) four
times, one after another: alone and beside a busy Python loop (one core's worth of other work), each with the
default CPUs per worker (all of this machine's) and with ``--cpus-per-worker 1``. Reports the wall time of the
command and the median seconds per training epoch (from the run's metrics.csv), and each condition's ratio to
the default alone. Writes ``benchmarks/results/train_load.csv``. Needs the machine to itself.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from neighbours import busy_neighbour, write_table  # benchmarks/neighbours.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
CONDITIONS = [("alone", None), ("alone", 1), ("busy", None), ("busy", 1)]


def run_training(out: Path, cpus_per_worker: int | None, args: argparse.Namespace) -> dict[str, float]:
    """One nas-train into ``out``; its wall time and median seconds per epoch."""
    argv = [sys.executable, "-c", "import sys; from nas.cli.train import main; sys.exit(main())",
            str(ROOT / "search_spaces" / "references" / "efficientnet_b0.json"), "--data", args.data,
            "--resolution", str(args.resolution), "--epochs", str(args.epochs), "--out", str(out)]
    if cpus_per_worker is not None:
        argv += ["--cpus-per-worker", str(cpus_per_worker)]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"nas-train exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    metrics = pd.read_csv(out / "metrics.csv")
    return {"wall_seconds": round(wall, 1), "seconds_per_epoch": round(statistics.median(metrics["seconds"]), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cifar10:../shared/data/cifar10")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train_load.csv")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (condition, cpus) in enumerate(CONDITIONS):
            with busy_neighbour(condition == "busy"):
                figures = run_training(Path(tmp) / f"run{index}", cpus, args)
            rows.append({"condition": condition, "cpus_per_worker": cpus or "default", **figures})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    base = float(table.loc[0, "seconds_per_epoch"])
    table["epoch_time_vs_default_alone"] = (table["seconds_per_epoch"] / base).round(2)
    write_table(table, args.out)


if __name__ == "__main__":
    main()
