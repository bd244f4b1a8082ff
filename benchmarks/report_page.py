"""report.html's size and the time to write it, for runs of 50 to 1,000 candidates.

    python -m benchmarks report_page --candidates 50,200,1000

Each run directory is made as a search would leave it: search.json with the default configuration, trials.csv
of N architectures sampled from the space (FLOPs and params counted analytically at 224 px, as the search
records them), best_b0.json of the best. The accuracies are drawn from a seeded formula, since a page's size
and write time do not depend on them; about a quarter of the rows are screened, a tenth stopped early, a few
failed, as in real searches. The page is then written ``--repeats`` times (the median is the figure), as the
search does after every candidate. Nothing else may run meanwhile.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def make_run(run_dir: Path, candidates: int, seed: int = 0) -> None:
    """A run directory of ``candidates`` rows (see the module docstring)."""
    from nas.engine.job import Measurement
    from nas.network.counting import profile
    from nas.search.config import SearchConfig
    from nas.search.recorder import write_best
    from nas.search.run_files import append_trials, write_json
    from nas.search.trial_record import trial_record
    from search_spaces.mnasnet import default_space

    config = SearchConfig.of(target_flops=400_000_000, out=str(run_dir), trials=candidates)
    space, rng = default_space(), np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "search.json", {"config": config.to_dict(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    records = []
    for trial in range(candidates):
        choices = space.sample(rng)
        spec = space.decode(choices, resolution=224, num_classes=10)
        counted = profile(spec, method="analytic")
        draw = rng.random()
        status = "screened" if draw < 0.25 else "stopped" if draw < 0.35 else "failed" if draw < 0.37 else None
        accuracy = float(np.clip(0.3 + 0.1 * np.log10(counted["flops"] / 1e8) + rng.normal(0, 0.03), 0, 1))
        measured = Measurement(status="failed" if status == "failed" else "ok", accuracy=accuracy,
                               flops=counted["flops"], params=counted["params"],
                               steps=75 if status == "stopped" else 300,
                               seconds=float(rng.uniform(5, 25)), final=status != "stopped",
                               reason="NaN loss" if status == "failed" else "")
        records.append(trial_record(trial, f"t{trial:05d}", choices, spec, measured, "trained", config.objective.score,
                                    status="screened" if status == "screened" else None))
    append_trials(run_dir / "trials.csv", records)
    best = max((r for r in records if r["status"] == "ok"), key=lambda r: r["reward"])
    write_best(run_dir, space, config, 10, best)


def matplotlib_svg_bytes(run_dir: Path) -> int:
    """Size of the accuracy-against-FLOPs scatter alone as matplotlib's SVG output (the alternative to the
    page's own SVG): one chart of the page's several."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.read_csv(run_dir / "trials.csv")
    evaluated = frame[frame["status"].isin(["ok", "stopped"])]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(evaluated["flops"], evaluated["accuracy"], s=12)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    return len(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", default="50,200,1000")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from nas.report.search_page import write_search_report

    print(f"{'candidates':>10}  {'page KB':>8}  {'write ms (median)':>17}  {'one matplotlib SVG scatter KB':>29}")
    with tempfile.TemporaryDirectory() as root:
        for count in (int(c) for c in args.candidates.split(",")):
            run_dir = Path(root) / f"run-{count}"
            make_run(run_dir, count)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                path = write_search_report(run_dir, "running")
                times.append(time.perf_counter() - start)
            print(f"{count:>10}  {path.stat().st_size / 1024:8.0f}  {statistics.median(times) * 1000:17.0f}  "
                  f"{matplotlib_svg_bytes(run_dir) / 1024:29.0f}")


if __name__ == "__main__":
    main()
