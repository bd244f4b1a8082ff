"""How a whole default search holds up beside one CPU-bound job (issue: a search collapsed 5-10x beside
another command).

    python -m benchmarks search_load [--trials 10] [--data synthetic] [--conditions alone,busy]

Runs a search through ``nas.api`` as a user would (its own process; default controller, concurrency, threads and proxy; ``--no-cache`` and
``--scheduler none`` so that every candidate trains its full budget) once alone and once beside a busy Python
loop, each in a fresh process and run directory, one after another. Reports the wall time of the whole
command (Ray's start included, as a user waits for it), the candidates trained, the proxy images trained per
second of that wall time (steps x batch summed over the candidates) and per second of summed trial time, and
the ratio of each condition's images per wall second to the search alone. Writes ``benchmarks/results/search_load.csv``. Needs the
machine to itself.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

import nas.api
from benchmarks import processes
from nas.search.config import SearchConfig

from benchmarks.neighbours import busy_neighbour, write_table

ROOT = Path(__file__).resolve().parent.parent


def run_search(out: Path, args: argparse.Namespace) -> dict[str, float]:
    """One default search into ``out``; its figures."""
    wall = processes.timed(nas.api.search, args.target, data=args.data, trials=args.trials, no_cache=True,
                           scheduler="none", seed=0, out=out)
    trials = pd.read_csv(out / "trials.csv")
    trained = trials[trials["status"].isin(["ok", "stopped"])]
    batch = SearchConfig.defaults()["batch_size"]  # the search runs with the default proxy batch
    images = float((trained["steps"].astype(float) * batch).sum())
    trial_seconds = float(trained["seconds"].sum())
    return {"wall_seconds": round(wall, 1), "trained": len(trained), "screened": int((trials["status"] == "screened").sum()),
            "images_per_wall_second": round(images / wall, 1),
            "images_per_trial_second": round(images / trial_seconds, 1),
            "candidates_per_hour": round(len(trained) / wall * 3600, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--target", default="400M")
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--conditions", default="alone,busy")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "search_load.csv")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for condition in args.conditions.split(","):
            with busy_neighbour(condition == "busy"):
                figures = run_search(Path(tmp) / condition, args)
            rows.append({"condition": condition, **figures})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    alone = table.loc[table["condition"] == "alone", "images_per_wall_second"]
    if len(alone):
        table["ratio_to_alone"] = (table["images_per_wall_second"] / float(alone.iloc[0])).round(2)
    write_table(table, args.out)


if __name__ == "__main__":
    main()
