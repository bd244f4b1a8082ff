"""nas-train beside another CPU-bound job: its default threads against ``--cpus-per-worker 1``.

    python -m benchmarks train_load [--data cifar10:../shared/data/cifar10] [--epochs 3]

Trains through ``nas.api.train`` as a user would (a fresh process, a local Ray instance, EfficientNet-B0 at 32 px) four
times, one after another: alone and beside a busy Python loop (one core's worth of other work), each with the
default CPUs per worker (all of this machine's) and with ``--cpus-per-worker 1`` (``cpus_per_worker=1``). Reports the wall time of
the call and the median seconds per training epoch (from the run's metrics.csv), and each condition's ratio to
the default alone. Writes ``benchmarks/results/train_load.csv``. Needs the machine to itself.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import pandas as pd

import nas.api
from benchmarks import processes

from benchmarks.neighbours import busy_neighbour, write_table

ROOT = Path(__file__).resolve().parent.parent
CONDITIONS = [("alone", None), ("alone", 1), ("busy", None), ("busy", 1)]


def run_training(out: Path, cpus_per_worker: int | None, args: argparse.Namespace) -> dict[str, float]:
    """One training (nas.api.train, its own process) into ``out``; its wall time and median seconds per epoch."""
    wall = processes.timed(nas.api.train, ROOT / "search_spaces" / "references" / "efficientnet_b0.json",
                           args.data, resolution=args.resolution, epochs=args.epochs, out=out,
                           cpus_per_worker=cpus_per_worker)
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
