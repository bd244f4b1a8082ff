"""Time per training epoch of nas-train's EfficientNet-B0 against a plain PyTorch loop around timm's
``efficientnet_b0``: the same data, global batch, optimizer and augmentation, side by side in one run.

timm needs torchvision, whose wheel may replace the pinned CPU torch: run this from its own environment,

    python3 -m venv /tmp/timmvenv && /tmp/timmvenv/bin/pip install torch torchvision timm && \\
        /tmp/timmvenv/bin/pip install -e .
    /tmp/timmvenv/bin/python -m benchmarks train_epoch --data cifar10:../shared/data/cifar10 --rounds 3

Each round trains one epoch with nas-train's loop (nas.training.full.train_network, which reports its training
seconds per epoch, evaluation excluded) and one epoch each with the plain loop (AdamW, the same
random-resized-crop + flip from nas.training.augment, no EMA, no evaluation) in NCHW and in channels_last; the
rounds alternate so a slow spell of the machine is shared. Prints median seconds per epoch and the ratios
plain / ours (goal >= 1.0).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from nas.data.datasets import load_data
from nas.training.augment import random_resized_crop_flip
from nas.training.full import channel_stats, train_network
from nas.training.recipe import TrainRecipe
from search_spaces import REFERENCES
from search_spaces.spec import load_spec


def plain_epoch(model: torch.nn.Module, data, recipe: TrainRecipe, seed: int, channels_last: bool = False) -> float:
    """Seconds of one epoch of a plain PyTorch training loop over ``data``'s training split (NCHW, or
    channels_last: the one-line change a user of the plain loop could make)."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in channel_stats(data.x_train))
    x_all = torch.from_numpy(data.x_train.copy())
    y_all = torch.from_numpy(data.y_train.copy())
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y_all), generator=generator)
    model.train()
    start = time.perf_counter()
    for step in range(len(y_all) // recipe.batch_size):
        index = order[step * recipe.batch_size:(step + 1) * recipe.batch_size]
        x = (x_all[index].permute(0, 3, 1, 2).float() / 255 - mean) / std
        x = random_resized_crop_flip(x, (recipe.crop_scale, 1.0), generator).contiguous(memory_format=layout)
        loss = F.cross_entropy(model(x), y_all[index], label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="cifar10:../shared/data/cifar10")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/train_epoch.csv")
    args = parser.parse_args()
    import timm

    torch.set_num_threads(args.threads)
    data = load_data(args.data, args.resolution, 0.2, 0)
    spec = load_spec(Path(REFERENCES) / "efficientnet_b0.json").replace(resolution=args.resolution)
    recipe = TrainRecipe(epochs=1, batch_size=args.batch_size)
    rows = []
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory() as out:
            train_network(spec, data, recipe, out)
            ours = float(pd.read_csv(Path(out) / "metrics.csv")["seconds"].iloc[0])
        torch.manual_seed(round_)
        theirs = plain_epoch(timm.create_model("efficientnet_b0", num_classes=data.num_classes), data, recipe,
                             round_)
        torch.manual_seed(round_)
        theirs_cl = plain_epoch(timm.create_model("efficientnet_b0", num_classes=data.num_classes), data, recipe,
                                round_, channels_last=True)
        rows.append({"round": round_, "ours_seconds": round(ours, 2), "timm_plain_seconds": round(theirs, 2),
                     "timm_channels_last_seconds": round(theirs_cl, 2)})
        print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    ours, theirs = statistics.median(frame["ours_seconds"]), statistics.median(frame["timm_plain_seconds"])
    theirs_cl = statistics.median(frame["timm_channels_last_seconds"])
    print(f"B0 epoch on {data.describe()}, batch {args.batch_size}, {args.threads} threads, torch "
          f"{torch.__version__}, timm {timm.__version__}")
    print(f"nas-train loop : {ours:7.2f} s/epoch (median of {args.rounds})")
    print(f"plain timm loop: {theirs:7.2f} s/epoch")
    print(f"plain timm loop, channels_last: {theirs_cl:7.2f} s/epoch")
    print(f"ratio          : {theirs / ours:7.3f} (plain / ours; goal >= 1.0); {theirs_cl / ours:.3f} against "
          f"the channels_last loop")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
