"""Which optimizer nas-train defaults to: EfficientNet-B0 trained by nas-train's loop on real images with SGD
(Nesterov), AdamW and RMSprop, each at its default learning rate and weight decay, the rest of the recipe equal.

    python -m benchmarks train_recipe --data cifar10:../shared/data/cifar10 --epochs 8

One network at a time on this machine's CPUs (no Ray: the same loop nas-train's workers run); prints held-out
accuracy (best of raw and EMA weights) and seconds per optimizer, and writes benchmarks/results/train_recipe.csv.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from nas.data.datasets import load_data
from nas.training.full import train_network
from nas.training.recipe import OPTIMIZERS, TrainRecipe
from search_spaces import REFERENCES
from search_spaces.spec import load_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cifar10:../shared/data/cifar10")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS),
                        help="optimizers to compare, each at its default lr or as NAME:LR (e.g. sgd:0.05,adamw:0.004)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/train_recipe.csv")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = load_spec(Path(REFERENCES) / "efficientnet_b0.json").replace(resolution=args.resolution)
    data = load_data(args.data, args.resolution, 0.2, 0)
    print(data.describe(), flush=True)
    rows = []
    for item in args.optimizers.split(","):
        optimizer, _, lr = item.partition(":")
        recipe = TrainRecipe(epochs=args.epochs, batch_size=args.batch_size, optimizer=optimizer,
                             lr=float(lr) if lr else None)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            final = train_network(spec, data, recipe, out)
            seconds = time.perf_counter() - start
            curve = pd.read_csv(Path(out) / "metrics.csv")
        rows.append({"optimizer": optimizer, "lr": recipe.lr, "weight_decay": recipe.weight_decay,
                     "epochs": args.epochs, "val_accuracy": round(final["val_accuracy"], 4),
                     "last_val_accuracy": round(final["last_val_accuracy"], 4),
                     "last_ema_val_accuracy": round(final["last_ema_val_accuracy"], 4),
                     "final_loss": float(curve["loss"].iloc[-1]), "seconds": round(seconds, 1)})
        print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    previous = pd.read_csv(args.out) if Path(args.out).is_file() else None
    (frame if previous is None else pd.concat([previous, frame])).to_csv(args.out, index=False)
    print(frame.to_string(index=False))


if __name__ == "__main__":
    main()
