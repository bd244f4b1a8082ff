"""What a finished (or stopped) nas-search run holds, as two results files: its candidates by family and its
finalists' real trainings, each figure read from the run's own files.

    python -m benchmarks run_summary runs/real-data/cifar10-fit/search-b0-fit --name cifar10_fit

Writes ``benchmarks/results/<name>_families.csv`` (per stem stride, downsampling and input size: candidates,
best and median proxy accuracy, median fitted width, mean trial seconds) and ``<name>_finalists.csv`` (per
finalist training so far, full or short: held-out accuracy, FLOPs, params, width factor, downsampling, input size, the
training's wall seconds from its metrics.csv), plus the search's wall seconds when ``wall_seconds.txt`` is
there.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from nas.search.run import open_run
from search_spaces.spec import load_spec

RESULTS = Path(__file__).parent / "results"


def families(run_dir: Path) -> pd.DataFrame:
    """Per family (stem stride, downsampling, input size): how many candidates and how the proxy scored them."""
    run = open_run(run_dir, "run_summary")
    trials = run.trials()
    shapes = [run.space.decode(list(choices)) for choices in trials["choices"]]
    trials["stem_stride"] = [s.stem_stride for s in shapes]
    trials["downsampling"] = [s.downsampling for s in shapes]
    trials["input_size"] = [s.resolution if run.space.searches_resolution else run.config.objective.resolution for s in shapes]
    trained = trials[trials["status"] != "screened"]
    return (trained.groupby(["stem_stride", "downsampling", "input_size"])
            .agg(candidates=("trial", "size"), best_proxy=("accuracy", "max"), median_proxy=("accuracy", "median"),
                 median_width_fit=("width_fit", "median"), mean_seconds=("seconds", "mean"))
            .reset_index())


def finalists(run_dir: Path) -> pd.DataFrame:
    """Each finalist training so far (a result.json in finalists/<name>/, and the short trainings of
    successive halving in finalists/short/<name>/)."""
    rows = []
    trained = [("full", path) for path in sorted((run_dir / "finalists").glob("*/result.json"))] + \
        [("short", path) for path in sorted((run_dir / "finalists" / "short").glob("*/result.json"))]
    for length, result_file in trained:
        result = json.loads(result_file.read_text())
        spec = load_spec(result_file.parent / "spec.json")
        metrics = pd.read_csv(result_file.parent / "metrics.csv")
        rows.append({"name": result_file.parent.name, "length": length, "epochs": result["recipe"]["epochs"],
                     "held_out_accuracy": result["val_accuracy"],
                     "flops": result["flops"], "params": result["params"],
                     "width_fit": spec.provenance.get("width_fit", ""), "stem_stride": spec.stem_stride,
                     "downsampling": spec.downsampling, "input_size": result["resolution"],
                     "train_seconds": round(float(metrics["seconds"].sum()), 1)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", required=True, help="the results files' prefix")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    for kind, frame in (("families", families(args.run)), ("finalists", finalists(args.run))):
        timing = args.run / "wall_seconds.txt"
        if timing.is_file():
            frame["search_wall_seconds"] = float(timing.read_text())
        path = RESULTS / f"{args.name}_{kind}.csv"
        frame.to_csv(path, index=False)
        print(frame.to_string(index=False))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
