"""Time the analytic FLOP count against fvcore on the same specs, in one run, and print the ratio.

    python -m benchmarks flops_speed [--specs 30] [--resolution 224] [--csv benchmarks/results/flops_speed.csv]
"""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from search_spaces.random_specs import random_spec, reference
from nas.network.counting import profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--specs", type=int, default=30)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--csv", help="append the figures to this CSV")
    args = parser.parse_args()
    rng = random.Random(0)
    specs = [reference(n) for n in ("efficientnet_b0", "mnasnet_a1", "mobilenet_v2")]
    specs += [random_spec(rng) for _ in range(args.specs - len(specs))]
    profile(specs[0], args.resolution, "fvcore")  # warm up imports

    start = time.perf_counter()
    fv = [profile(s, args.resolution, "fvcore") for s in specs]
    fvcore_s = (time.perf_counter() - start) / len(specs)

    repeats = 200
    start = time.perf_counter()
    for _ in range(repeats):
        an = [profile(s, args.resolution, "analytic") for s in specs]
    analytic_s = (time.perf_counter() - start) / (len(specs) * repeats)

    assert an == fv, "analytic and fvcore counts differ"
    print(f"{len(specs)} specs at {args.resolution}px, identical totals from both methods")
    print(f"fvcore   : {fvcore_s * 1e3:9.2f} ms per spec (build model + trace)")
    print(f"analytic : {analytic_s * 1e3:9.4f} ms per spec")
    print(f"speed-up : {fvcore_s / analytic_s:,.0f}x (goal: at least 1000x)")
    if args.csv:
        import pandas as pd

        row = {"date": time.strftime("%Y-%m-%d"), "specs": len(specs), "resolution": args.resolution,
               "fvcore_ms": round(fvcore_s * 1e3, 3), "analytic_ms": round(analytic_s * 1e3, 5),
               "speedup": round(fvcore_s / analytic_s)}
        pd.DataFrame([row]).to_csv(args.csv, mode="a", header=not Path(args.csv).exists(), index=False)


if __name__ == "__main__":
    main()
