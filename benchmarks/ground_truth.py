"""The ground truth a proxy is judged against: networks of the space trained with nas-train's recipe on real
images, one row per training, in a table any proxy can be scored against (``nas-proxy-check --reference-table``).

    python -m benchmarks ground_truth --data cifar10:../shared/data/cifar10 --resolution 32 --epochs 15
    python -m benchmarks ground_truth --data folder:../shared/data/clothing10 --resolution 64 --epochs 15

The networks (``--models``, in this order): the space's nearest to EfficientNet-B0, MnasNet-A1 and MobileNetV2;
four downsampling variants of B0's nearest (a stride-1 stem, the same made narrower, the last reduction kept,
the first block's reduction kept); the rest drawn from the space
across a FLOPs window around B0's FLOPs at ``--resolution`` (log-stratified, seeded). Each is trained once
(seed 0); every third also with seed 1, to measure the seed noise. The table (``--table``, default
``benchmarks/results/ground_truth_<data>.csv``) holds held-out (``val_accuracy``) and test accuracy, FLOPs
(fvcore at the resolution), params, wall time and the whole spec; it is rewritten after each training, and a
second run trains only what the table lacks (an interrupted training resumes from its checkpoint).
``--cpus 1`` trains on one core, so the script can run beside other work (accuracies are seeded; its wall
times are then one core's). ``--shard K/N`` trains every N-th training of the plan from the K-th: N copies, one
per core, fill one table (each adds its rows under a lock, re-reading the table first). ``--names A,B`` trains
only those networks of the plan.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nas.console import say
from nas.files import atomic_write
from benchmarks.real_data import _slug, run_training
from search_spaces import REFERENCES
from search_spaces.mnasnet import MnasNetSpace, space_named
from search_spaces.spec import ArchSpec, load_spec

COLUMNS = ["name", "kind", "seed", "val_accuracy", "test_accuracy", "flops", "params", "resolution", "epochs",
           "stem_stride", "downsampling", "wall_seconds", "block_strings", "spec"]


def reference_nearest(space: MnasNetSpace, resolution: int) -> list[tuple[str, str, ArchSpec]]:
    """The space's nearest architectures to the shipped references."""
    out = []
    for name in ("efficientnet_b0", "mnasnet_a1", "mobilenet_v2"):
        spec = load_spec(Path(REFERENCES) / f"{name}.json")
        out.append((f"{name}-nearest", "reference", space.decode(space.nearest(spec), resolution, name=name)))
    return out


def downsampling_variants(space: MnasNetSpace, b0: ArchSpec, resolution: int) -> list[tuple[str, str, ArchSpec]]:
    """B0's nearest with some of its reductions kept at stride 1 (the space's stride decisions)."""
    base = space.nearest(b0)
    decisions = space.stride_decisions  # position (-1 stem) -> choice index
    keep = space.config.reduction_strides.index(1)
    first, last = space.reduction_blocks[0], space.reduction_blocks[-1]
    narrow = space.config.filter_multipliers.index(min(space.config.filter_multipliers))
    variants = {"b0-stem1": [-1], "b0-stem1-narrow": [-1], f"b0-b{last}keep": [last],
                f"b0-b{first}keep": [first]}
    out = []
    for name, kept in variants.items():
        choices = list(base)
        for position in kept:
            choices[decisions[position]] = keep
        if name.endswith("narrow"):
            for b in range(space.num_blocks):
                choices[6 * b + 4] = narrow
        out.append((name, "downsampling", space.decode(choices, resolution, name=name)))
    return out


def sampled(space: MnasNetSpace, count: int, low: float, high: float, resolution: int, seed: int,
            seen: set[str], min_downsampling: int = 8) -> list[tuple[str, str, ArchSpec]]:
    """``count`` architectures drawn from the space, one per log-FLOPs stratum of [low, high]; when the space
    searches strides, the strata take turns at each total downsampling from the skeleton's down to
    ``min_downsampling`` (32, 16, 8 for MobileNetV2's skeleton), so that each is represented, not mostly the
    cheapest."""
    from nas.network.counting import profile

    wanted = sorted({space.decode(space.sample(np.random.default_rng(i))).downsampling for i in range(400)}
                    - set(range(min_downsampling)), reverse=True) if space.searches_strides else [None]

    edges = np.linspace(math.log(low), math.log(high), count + 1)
    rng = np.random.default_rng(seed)
    out = []
    for stratum in range(count):
        best, distance = None, float("inf")
        middle = (edges[stratum] + edges[stratum + 1]) / 2
        for _ in range(20000):
            spec = space.decode(space.sample(rng), resolution, name=f"sampled-{stratum:02d}")
            if wanted[stratum % len(wanted)] not in (None, spec.downsampling):
                continue
            if " ".join(spec.block_strings) + str(spec.stem_stride) in seen:
                continue
            flops = math.log(profile(spec, method="analytic")["flops"])
            if abs(flops - middle) < distance:
                best, distance = spec, abs(flops - middle)
            if edges[stratum] <= flops <= edges[stratum + 1]:
                break
        seen.add(" ".join(best.block_strings) + str(best.stem_stride))
        out.append((best.name, "sampled", best))
    return out


def networks(space: MnasNetSpace, count: int, resolution: int, window: tuple[float, float],
             seed: int) -> list[tuple[str, str, ArchSpec]]:
    """The table's networks, in a fixed order for given settings."""
    from nas.network.counting import profile

    fixed = reference_nearest(space, resolution)
    fixed += downsampling_variants(space, load_spec(Path(REFERENCES) / "efficientnet_b0.json"), resolution)
    b0_flops = profile(fixed[0][2], method="analytic")["flops"]
    seen = {" ".join(spec.block_strings) + str(spec.stem_stride) for _, _, spec in fixed}
    return fixed + sampled(space, max(0, count - len(fixed)), window[0] * b0_flops, window[1] * b0_flops,
                           resolution, seed, seen)


def table_row(name: str, kind: str, seed: int, spec: ArchSpec, result: dict, epochs: int) -> dict:
    return {"name": name, "kind": kind, "seed": seed, "val_accuracy": result["val_accuracy"],
            "test_accuracy": result.get("test_accuracy"), "flops": result["flops"], "params": result["params"],
            "resolution": result["resolution"], "epochs": epochs, "stem_stride": spec.stem_stride,
            "downsampling": spec.downsampling,
            "wall_seconds": result.get("wall_seconds"), "block_strings": " ".join(spec.block_strings),
            "spec": json.dumps(spec.replace(num_classes=result["num_classes"]).to_dict(), separators=(",", ":"))}


def add_row(table: Path, row: dict, lock: Path) -> None:
    """Add one training's row to the table, which another shard may have written since."""
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        rows = pd.read_csv(table).to_dict("records") if table.is_file() else []
        rows.append(row)
        atomic_write(table, pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))


def shard_of(text: str) -> tuple[int, int]:
    """``K/N`` -> (K, N), 0 <= K < N."""
    index, count = (int(v) for v in text.split("/"))
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard {text}: K/N with 0 <= K < N")
    return index, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="cifar10:../shared/data/cifar10")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--models", type=int, default=24)
    parser.add_argument("--space", default=str(Path(__file__).parent / "results" / "space_downsampling_ground_truth.json"),
                        help="a shipped space's name or a space file (default: the downsampling space as the tables "
                             "were drawn from it, before its x0.5 width choice: a resumed table draws the same "
                             "networks)")
    parser.add_argument("--window", default="0.35,1.5", help="sampled FLOPs as fractions of B0's nearest")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw")
    parser.add_argument("--cpus", type=int, help="nas-train's --cpus-per-worker (default: nas-train's)")
    parser.add_argument("--table", help="default: benchmarks/results/ground_truth_<data name>.csv")
    parser.add_argument("--work", help="nas-train's run directories (default: runs/ground-truth/<data name>)")
    parser.add_argument("--shard", type=shard_of, default=(0, 1), metavar="K/N",
                        help="train only the plan's K-th, (K+N)-th, ... trainings (default 0/1: all)")
    parser.add_argument("--names", type=lambda text: set(text.split(",")), default=None, metavar="A,B,...",
                        help="train only these networks of the plan (default: all)")
    args = parser.parse_args()
    from nas.engine.runner import start_ray

    name = _slug(args.data.split(":", 1)[-1].rstrip("/").split("/")[-1])
    table = Path(args.table or Path(__file__).parent / "results" / f"ground_truth_{name}.csv")
    work = Path(args.work or Path("runs") / "ground-truth" / name)
    work.mkdir(parents=True, exist_ok=True)
    space = space_named(args.space)
    low, high = (float(v) for v in args.window.split(","))
    chosen = networks(space, args.models, args.resolution, (low, high), args.seed)
    plan = [(n, kind, spec, 0) for n, kind, spec in chosen]
    plan += [(n, kind, spec, 1) for i, (n, kind, spec) in enumerate(chosen) if i % 3 == 0]
    index, count = args.shard
    done = {(r["name"], int(r["seed"])) for r in pd.read_csv(table).to_dict("records")} if table.is_file() else set()
    options = ("--cpus-per-worker", str(args.cpus)) if args.cpus else ()
    start_ray(None)
    for i, (net, kind, spec, seed) in enumerate(plan):
        if (net, seed) in done or i % count != index or (args.names and net not in args.names):
            continue
        spec_file = work / f"{net}.json"
        spec_file.write_text(spec.to_json() + "\n")
        began = time.perf_counter()
        result = run_training(spec_file, args.data, args.resolution, args.epochs, seed, work / f"{net}-s{seed}",
                              options=options)
        add_row(table, table_row(net, kind, seed, spec, result, args.epochs), work / "table.lock")
        say(f"[{i + 1}/{len(plan)}] {net} seed {seed}: val {result['val_accuracy']:.4f}, test "
            f"{result.get('test_accuracy')}, {result['flops'] / 1e6:.1f}M FLOPs "
            f"({time.perf_counter() - began:.0f} s)")
    say(f"{len(pd.read_csv(table)) if table.is_file() else 0} trainings in {table}")


if __name__ == "__main__":
    main()
