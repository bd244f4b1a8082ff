"""One against two Ray Train workers (DDP over gloo on this CPU): the same global batch, the same seeds.

    python -m benchmarks train_workers --data cifar10:../shared/data/cifar10 --epochs 5 --seeds 0,1

Runs nas-train (the whole command path: Ray, TorchTrainer, the run directory) for each seed with 1 worker of all
CPUs and with 2 workers of half the CPUs each, one run at a time; prints the held-out accuracy of each, the
seed-to-seed spread, and the seconds per training epoch (median over epochs) with their ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import pandas as pd

from nas.retrain.config import TrainSettings
from nas.retrain.driver import run_training
from nas.training.recipe import TrainRecipe
from search_spaces import REFERENCES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=str(Path(REFERENCES) / "efficientnet_b0.json"))
    parser.add_argument("--data", default="cifar10:../shared/data/cifar10")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--out", default="benchmarks/results/train_workers.csv")
    args = parser.parse_args()
    cpus = os.cpu_count() or 2
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as out:
                settings = TrainSettings(spec=args.spec, data=args.data, resolution=args.resolution,
                                         recipe=TrainRecipe(epochs=args.epochs, batch_size=args.batch_size, seed=seed),
                                         out=str(Path(out) / "run"), workers=workers,
                                         cpus_per_worker=max(1, cpus // workers))
                result = run_training(settings, log=lambda line: None)
                metrics = pd.read_csv(Path(out) / "run" / "metrics.csv")
            rows.append({"seed": seed, "workers": workers, "val_accuracy": round(result["val_accuracy"], 4),
                         "test_accuracy": round(result.get("test_accuracy", float("nan")), 4),
                         "seconds_per_epoch": round(statistics.median(metrics["seconds"]), 2)})
            print(json.dumps(rows[-1]), flush=True)
    frame = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    by = frame.groupby("workers")
    accuracy, seconds = by["val_accuracy"].mean(), by["seconds_per_epoch"].median()
    pairs = frame.pivot(index="seed", columns="workers", values="val_accuracy")
    print(frame.to_string(index=False))
    print(f"held-out accuracy: 1 worker {accuracy[1]:.4f}, 2 workers {accuracy[2]:.4f} (mean over seeds); "
          f"largest 1-vs-2 gap {float((pairs[1] - pairs[2]).abs().max()):.4f}; seed-to-seed spread "
          f"{float(frame.groupby('workers')['val_accuracy'].agg(lambda s: s.max() - s.min()).max()):.4f}")
    print(f"seconds per epoch: 1 worker {seconds[1]:.2f}, 2 workers {seconds[2]:.2f} (ratio {seconds[2] / seconds[1]:.3f})")


if __name__ == "__main__":
    main()
