"""Two searches in a row on the same proxy with different targets: what the result cache saves the second.

    python -m benchmarks cache_reuse [--trials 16] [--steps 100] [--controller ppo] [--targets 400M,600M]

Runs a search through ``nas.api`` (each in its own process, as a user would) twice with a fresh cache directory, then once
more without the cache (``no_cache=True``, nas-search's ``--no-cache``) at the second target as the control, and prints trainings, cache hits and wall
time of each. Needs the machine to itself: a second CPU job slows trials several times.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

import nas.api
from benchmarks import processes


def run(out: Path, target: str, args: argparse.Namespace, **extra: object) -> tuple[float, pd.DataFrame]:
    """One search through nas.api in its own process, as a user runs one; its wall time and trials."""
    seconds = processes.timed(nas.api.search, target, trials=args.trials, steps=args.steps,
                              controller=args.controller, seed=args.seed, out=out, **extra)
    return seconds, pd.read_csv(out / "trials.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--controller", default="ppo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", default="400M,600M")
    args = parser.parse_args()
    first_target, second_target = args.targets.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["NAS_CACHE_DIR"] = str(root / "cache")
        rows = []
        for name, target, extra in (("first", first_target, {}), ("second", second_target, {}),
                                    ("second, --no-cache", second_target, {"no_cache": True})):
            seconds, trials = run(root / name.replace(", ", "-").replace("--", ""), target, args, **extra)
            cached = int((trials["source"] == "cache").sum())
            rows.append({"run": name, "target": target, "trials": len(trials), "trained": len(trials) - cached,
                         "from cache": cached, "seconds": round(seconds, 1),
                         "best reward": round(float(trials["reward"].max()), 4)})
    table = pd.DataFrame(rows)
    print(f"\n{args.controller}, {args.trials} trials of {args.steps} steps, seed {args.seed}")
    print(table.to_string(index=False))
    print(f"second run / first run wall time: {rows[1]['seconds'] / rows[0]['seconds']:.2f}; "
          f"second run with / without the cache: {rows[1]['seconds'] / rows[2]['seconds']:.2f}")


if __name__ == "__main__":
    main()
