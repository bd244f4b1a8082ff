"""Controllers on an independent table of trained networks: NAS-Bench-Macro (Su et al., CVPR 2021).

NAS-Bench-Macro trained all 6,561 networks of a small MBConv space on CIFAR-10, three times each: 8 layers,
each an identity, an MBConv of expansion 3 and kernel 3, or an MBConv of expansion 6 and kernel 5. Nothing in
this project made it, so it checks the controllers on accuracies they were not tuned on. The table is not
shipped: take ``data/nas-bench-macro_cifar10.json`` from the benchmark's repository
(github.com/xiusu/NAS-Bench-Macro, Apache-2.0) and give its path.

    python -m benchmarks tabular_benchmark nas-bench-macro_cifar10.json [--seeds 50] [--samples 100]
                                           [--controllers random,evolution,ppo,reinforce,predictor]

Each query is answered as a search sees it: the test accuracy of one of the network's three trainings, drawn
at random (the seed noise of a real evaluation). Prints, per controller and after 25/50/100/... queries, the
mean over seeds of the three-training mean accuracy of the network the search would keep (the best it
observed), and of the best network it queried (what a search that could re-measure would keep).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import numpy as np

from benchmarks.controller_landscapes import parse_variant
from controllers import CONTROLLERS, make_controller

CHECKPOINTS = (10, 25, 50, 100, 200, 300)


Table = dict[tuple[int, ...], dict]


def load_table(path: Path) -> Table:
    """Choices (one digit per layer) -> the network's row: ``test_acc`` (its trainings), ``flops``, ``params``."""
    table = json.loads(path.read_text())
    return {tuple(int(c) for c in arch): row for arch, row in table.items()}


def free_features(table: Table):
    """The predictor's feature hook: log FLOPs and log params of the choices, known without training."""
    def features(choices) -> tuple[float, float]:
        row = table[tuple(choices)]
        return math.log(row["flops"]), math.log(row["params"])
    return features


def run(name: str, table: Table, sizes: list[int], seed: int, samples: int) -> list[tuple[float, float]]:
    """(observed accuracy, mean accuracy) of the networks one controller queries, in order. ``predictor+free``
    is the predictor given FLOPs and params as free features."""
    controller_name, options = parse_variant(name)
    if controller_name == "predictor+free":
        controller_name, options = "predictor", {**options, "features": free_features(table)}
    controller = make_controller(controller_name, sizes, seed=seed, **options)
    noise = np.random.default_rng(10_000 + seed)
    queried = []
    for _ in range(samples):
        choices = tuple(controller.ask())
        trainings = table[choices]["test_acc"]
        observed = trainings[noise.integers(len(trainings))]
        controller.tell(list(choices), observed / 100)
        queried.append((observed, statistics.mean(trainings)))
    return queried


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=Path, help="nas-bench-macro_cifar10.json")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--controllers", default=",".join(CONTROLLERS),
                        help="comma-separated; a controller's options in brackets, separated by semicolons: "
                             "reinforce[lr=0.005;warmup=10]; predictor+free: the predictor given FLOPs and params")
    args = parser.parse_args()
    if not args.table.is_file():
        parser.error(f"{args.table}: no such file (see --help for where the table comes from)")
    table = load_table(args.table)
    layers = len(next(iter(table)))
    sizes = [1 + max(arch[i] for arch in table) for i in range(layers)]
    accuracies = [statistics.mean(row["test_acc"]) for row in table.values()]
    checkpoints = [c for c in CHECKPOINTS if c <= args.samples]
    print(f"NAS-Bench-Macro: {len(table)} networks, {layers} decisions of {sizes[0]} choices; best mean "
          f"accuracy {max(accuracies):.2f}, mean {statistics.mean(accuracies):.2f}; "
          f"{args.seeds} seeds x {args.samples} queries, each answered by one of its trainings")
    names = args.controllers.split(",")
    width = max(10, *(len(n) for n in names))
    header = " ".join(f"{'@' + str(c):>6}" for c in checkpoints)
    print(f"{'':<{width}} {'kept (the best observed), mean over seeds':^{7 * len(checkpoints) + 6}} | "
          f"{'the best queried':^{7 * len(checkpoints)}}")
    print(f"{'controller':<{width}} {header}  +-s.e. | {header}")
    for name in names:
        runs = [run(name, table, sizes, seed, args.samples) for seed in range(args.seeds)]
        kept = [[max(r[:c])[1] for r in runs] for c in checkpoints]
        queried = [statistics.mean(max(m for _, m in r[:c]) for r in runs) for c in checkpoints]
        error = statistics.stdev(kept[-1]) / math.sqrt(len(runs)) if len(runs) > 1 else math.nan
        print(f"{name:<{width}} {' '.join(f'{statistics.mean(v):6.2f}' for v in kept)}  +-{error:4.2f} | "
              f"{' '.join(f'{v:6.2f}' for v in queried)}", flush=True)


if __name__ == "__main__":
    main()
