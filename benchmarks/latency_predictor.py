"""Does the lookup table predict a network's latency? Predicted against measured, on this machine.

    PYTHONPATH=. python -m benchmarks latency_predictor [--specs 30] [--threads 1 2] [--runtimes torch onnxruntime]
                                                        [--out DIR]

For each runtime (PyTorch eager; onnxruntime on the CPU, the runtime of nas-export's file) and thread count:
builds (or reuses, from ``--out``) the latency table of the default search space at
224 px, batch 1, and extends it with the layers of the three reference networks (which lie partly outside
the space; the device is this machine, so the table may be extended here). Then ``--specs`` random
architectures of the space plus the reference networks are built and measured whole (``--rounds``
interleaved measurements each, their median; in onnxruntime each network exported as nas-export exports it);
their predicted latency is the sum of their parts' entries
times the table's calibration scale (fitted on 8 other random networks when the table was built), and the
uncalibrated sum is reported too, and so is the sum recalibrated in the same rounds: the 8 calibration networks
measured again, interleaved with the others, and the scale fitted on them alone. A shared virtual machine's
speed drifts by tens of percent between the table's build and the measurements minutes later; the
recalibrated error is the predictor's own, with that drift taken out. Prints, per runtime and thread count,
the median and worst absolute error
in % of the measured latency and Spearman's rho (and Kendall's tau) between predicted and measured; writes
``latency_predictor.csv``. Run it with the machine to itself.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nas.latency import tables as latency
from nas.proxy_check.rank_stats import kendall_tau_b, spearman_rho
from search_spaces.spec import load_spec
from search_spaces.mnasnet import default_space

REFERENCES = Path(__file__).resolve().parents[1] / "search_spaces" / "references"


def table_for(runtime: str, threads: int, out: Path, references: list) -> latency.LatencyTable:
    """The space's table in ``runtime`` at ``threads`` (built once, then reused), extended with the references'
    layers."""
    path = out / (f"table_cpu_{threads}t.json" if runtime == "torch" else f"table_{runtime}_cpu_{threads}t.json")
    space = default_space()
    if path.is_file():
        table = latency.load_table(path, space)
        print(f"{runtime}, {threads} thread(s): reusing {path} ({len(table.entries)} entries, built in "
              f"{table.seconds:.0f} s)")
    else:
        table = latency.build_table(space, 224, 1000, "cpu", threads, runtime=runtime)
        print(f"{runtime}, {threads} thread(s): built the table, {len(table.entries)} entries in "
              f"{table.seconds:.0f} s", flush=True)
    missing = table.missing(references)
    if missing:
        table.fill(missing)
        print(f"  + {len(missing)} layers of the reference networks", flush=True)
    if table.scale == 1.0:  # a table from before calibration
        table.calibrate(latency.calibration_specs(space, 224, 1000, 8))
    print(f"  calibration scale {table.scale:.3f} (measured / summed, 8 other random networks)", flush=True)
    table.save(path)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", type=int, default=30, help="random architectures of the space")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runtimes", nargs="+", default=list(latency.RUNTIMES), choices=latency.RUNTIMES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each network (median)")
    parser.add_argument("--out", default="benchmarks/results/latency")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    space, rng = default_space(), np.random.default_rng(args.seed)
    references = [load_spec(p).replace(num_classes=1000) for p in sorted(REFERENCES.glob("*.json"))]
    specs = [space.decode(space.sample(rng), name=f"random-{i:02d}") for i in range(args.specs)] + references

    rows = []
    for runtime in args.runtimes:
        for threads in args.threads:
            table = table_for(runtime, threads, out, references)
            started = time.perf_counter()
            calibration = latency.calibration_specs(default_space(), 224, 1000, 8)
            measured = latency.measure_networks(calibration + specs, "cpu", threads, 1, args.rounds, runtime=runtime)
            scale_now = float(np.median([np.median(runs) / table.summed(spec)
                                         for spec, runs in zip(calibration, measured)]))
            for spec, runs in zip(specs, measured[len(calibration):]):
                rows.append(dict(runtime=runtime, threads=threads, name=spec.name, predicted_ms=table.predict(spec),
                                 summed_ms=table.summed(spec), measured_ms=float(np.median(runs)),
                                 spread_ms=max(runs) - min(runs), table_seconds=round(table.seconds, 1),
                                 scale=table.scale, scale_now=scale_now,
                                 recalibrated_ms=table.summed(spec) * scale_now))
            print(f"  measured {len(specs)} networks in {time.perf_counter() - started:.0f} s", flush=True)
    frame = pd.DataFrame(rows)
    frame["error_pct"] = 100 * (frame.predicted_ms - frame.measured_ms) / frame.measured_ms
    frame["uncalibrated_error_pct"] = 100 * (frame.summed_ms - frame.measured_ms) / frame.measured_ms
    frame["recalibrated_error_pct"] = 100 * (frame.recalibrated_ms - frame.measured_ms) / frame.measured_ms
    frame.to_csv(out / "latency_predictor.csv", index=False)

    print(f"\n{'runtime':>11} {'threads':>7} {'networks':>8} {'measured ms':>14} {'median |err| %':>14} {'worst |err| %':>13} "
          f"{'mean err %':>10} {'uncalibrated median |err| %':>27} {'recalibrated median |err| %':>27} "
          f"{'scale then/now':>14} {'Spearman':>8} {'Kendall':>7}")
    for (runtime, threads), group in frame.groupby(["runtime", "threads"], sort=False):
        errors = group.error_pct.abs()
        print(f"{runtime:>11} {threads:>7} {len(group):>8} {group.measured_ms.min():6.1f}..{group.measured_ms.max():<6.1f} "
              f"{errors.median():>14.1f} {errors.max():>13.1f} {group.error_pct.mean():>10.1f} "
              f"{group.uncalibrated_error_pct.abs().median():>27.1f} "
              f"{group.recalibrated_error_pct.abs().median():>27.1f} "
              f"{group.scale.iloc[0]:>6.3f}/{group.scale_now.iloc[0]:<7.3f} "
              f"{spearman_rho(group.predicted_ms, group.measured_ms):>8.3f} "
              f"{kendall_tau_b(group.predicted_ms, group.measured_ms):>7.3f}")
    for spec in references:
        line = frame[frame.name == spec.name]
        print(f"  {spec.name}: " + ", ".join(f"{r.runtime} {r.threads}t predicted {r.predicted_ms:.1f} ms, "
                                             f"measured {r.measured_ms:.1f} ms" for r in line.itertuples()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
