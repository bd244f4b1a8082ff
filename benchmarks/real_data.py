"""Does the search pay on real images? The default nas-search, then nas-train of its winner and of the three
reference networks under one recipe and several seeds, judged on the data's test split.

    python -m benchmarks real_data --data cifar10:../shared/data/cifar10 --targets 400M --seeds 0,1,2 --epochs 15
    python -m benchmarks real_data --data folder:../shared/data/clothing10 --resolution 64 --targets 400M \
        --epochs 15 --reference-seeds 0,1 [--finalists 4]
    python -m benchmarks real_data --data cifar10:../shared/data/cifar10 --space downsampling --targets b0 \
        --hand-fix --reference-seeds 0 --out runs/real-data/cifar10-downsampling

(a) ``nas-search --target-flops T --data D`` with every other option at its default (``--start-from`` passed on
when given), for each target;
(b) ``nas-train`` of each winner and of EfficientNet-B0, MnasNet-A1 and MobileNetV2 at ``--resolution`` for
``--epochs``, one run per seed; (c) a table of test accuracy (mean and spread over seeds) against FLOPs at
224 px, each winner's margin over each reference, the wall times, and a plot. With ``--finalists K`` the
K best candidates of each search (by proxy reward, the winner first) and each of its start points are each
trained once (the first seed, ``nas-train RUN --trial N``), and the one with the best *held-out* accuracy (never
the test split) is trained on the other seeds too: the row ``search-T-finalists``, what a user gets who trains a
few finalists before choosing. With ``--space S`` the searches run in that space at the images' resolution
(``--space S --resolution R``: FLOPs counted and the proxy trained at R) and a target ``b0`` is EfficientNet-B0's
FLOPs where the search counts them; ``--hand-fix`` adds the obvious fix by hand, B0 with a stride-1 stem at the
widest width multiplier that keeps B0's FLOPs at ``--resolution``. Each network is compared with
EfficientNet-B0 seed by seed (the same test images and seed): the mean difference and its 95% t-interval over
seeds, in ``paired.csv``. Everything lands in
``--out`` (default ``runs/real-data/<data name>/``) and is reused when the script runs again: a finished search
or training is read back, not repeated; ``--recorded CSV`` reads the trainings a previous ``runs.csv`` holds.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from nas.console import say
from nas.data.datasets import load_data
from search_spaces import REFERENCES

REFERENCE_NETWORKS = ("efficientnet_b0", "mnasnet_a1", "mobilenet_v2")
HAND_FIX = "b0-stem1-scaled"  # --hand-fix: B0 with a stride-1 stem, width-scaled to its FLOPs


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def run_search(data: str, target: str, out: Path, options: list[str]) -> tuple[Path, float]:
    """The default search for ``target`` on ``data``, with ``options`` added (reused when its best_b0.json and
    timing exist)."""
    from nas.cli.search import main as search_main

    timing = out / "wall_seconds.txt"
    if (out / "best_b0.json").is_file() and timing.is_file():
        return out / "best_b0.json", float(timing.read_text())
    start = time.perf_counter()
    resume = ["--resume"] if (out / "search.json").is_file() else []
    code = search_main(["--target-flops", target, "--data", data, "--out", str(out), *resume,
                        *([] if resume else options)])
    if code != 0:
        raise SystemExit(f"nas-search failed ({code}) in {out}")
    seconds = time.perf_counter() - start
    timing.write_text(f"{seconds:.1f}\n")
    return out / "best_b0.json", seconds


def run_training(spec: Path, data: str, resolution: int, epochs: int, seed: int, out: Path,
                 trial: int | None = None, options: tuple[str, ...] = ()) -> dict:
    """nas-train of ``spec`` (with ``trial``: that trial of the search run ``spec``; ``options``: more of its flags),
    reused when its result.json exists, resumed when it was interrupted."""
    from nas.cli.train import main as train_main

    if (out / "result.json").is_file():
        return json.loads((out / "result.json").read_text())
    if (out / "train.json").is_file():
        args = ["--resume", "--out", str(out), *options]
    else:
        args = [str(spec), "--data", data, "--resolution", str(resolution), "--epochs", str(epochs), "--seed",
                str(seed), "--out", str(out), *(["--trial", str(trial)] if trial is not None else []), *options]
    start = time.perf_counter()
    if train_main(args) != 0:
        raise SystemExit(f"nas-train failed in {out}")
    result = json.loads((out / "result.json").read_text())
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def b0_flops(resolution: int, num_classes: int) -> int:
    """EfficientNet-B0's FLOPs at ``resolution``."""
    from search_spaces.spec import load_spec

    from nas.network.counting import profile

    b0 = load_spec(Path(REFERENCES) / "efficientnet_b0.json").replace(num_classes=num_classes)
    return profile(b0, resolution, method="analytic")["flops"]


def hand_fixed_b0(resolution: int, num_classes: int) -> Any:
    """EfficientNet-B0 with a stride-1 stem, at the widest width multiplier (to 0.01, EfficientNet's rounding)
    whose FLOPs at ``resolution`` stay within B0's own (what ``nas-search --finalists`` trains beside B0)."""
    from nas.network.scaling import stem1_b0_within

    fixed = stem1_b0_within(b0_flops(resolution, num_classes), resolution, num_classes)
    if fixed is None:
        raise SystemExit("no width keeps the stride-1-stem B0 within B0's FLOPs")
    return fixed


T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)  # Student t, 97.5%, df 1-10


def t975(df: int) -> float:
    """Student t's 97.5% quantile with ``df`` degrees of freedom (the normal's 1.96 beyond the table)."""
    return T975[df - 1] if df <= len(T975) else 1.96


def paired_to_b0(rows: pd.DataFrame) -> pd.DataFrame:
    """Each network's test accuracy minus EfficientNet-B0's on the same seed, and (when it was trained) minus
    the hand fix's: mean, 95% t-interval over the seeds both have, and the seeds; one row per pair."""
    frames = [paired_to(rows, "efficientnet_b0")]
    if HAND_FIX in set(rows["network"]):
        frames.append(paired_to(rows, HAND_FIX))
    return pd.concat(frames, ignore_index=True)


def paired_to(rows: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Each network's test accuracy minus ``reference``'s on the same seed: mean, 95% t-interval over the seeds
    both have, and the seeds (column ``diff_to_b0`` for every reference, as the file has always named it)."""
    b0 = rows[rows["network"] == reference].set_index("seed")["test_accuracy"]
    out = []
    for network, group in rows[rows["network"] != reference].groupby("network", sort=False):
        mine = group.set_index("seed")["test_accuracy"]
        seeds = sorted(set(mine.index) & set(b0.index))
        diffs = [float(mine[s] - b0[s]) for s in seeds]
        mean = sum(diffs) / len(diffs) if diffs else float("nan")
        half = float("nan")
        if len(diffs) > 1:
            half = t975(len(diffs) - 1) * float(pd.Series(diffs).std()) / len(diffs) ** 0.5
        out.append({"network": network, "reference": reference, "seeds": len(diffs), "diff_to_b0": mean,
                    "low95": mean - half, "high95": mean + half})
    return pd.DataFrame(out)


def finalists(run: Path, k: int) -> list[tuple[int, str | None]]:
    """The ``k`` best trained candidates of a search run by reward, then each of the search's start points not
    among them (``--start-from``): (trial number, the start point's name or None), the winner first."""
    from nas.search.run import open_run
    from nas.search.start_points import start_point_names

    opened = open_run(run, "finalists")
    trials = opened.trials()
    trials = trials[trials["status"] == "ok"].sort_values("reward", ascending=False)
    names, found = start_point_names(opened.config.start_from, opened.space,
                                     opened.config.sizing(opened.num_classes())), []
    for _, row in trials.iterrows():
        start = names.get(tuple(row["choices"]))
        if len(found) < k or start is not None:
            found.append((int(row["trial"]), start))
    return found


def flops_at_224(spec: Path | Any, num_classes: int) -> int:
    """FLOPs at 224 px of a spec (a file, or an ArchSpec) with ``num_classes`` classes."""
    from nas.network.counting import profile
    from search_spaces.spec import load_spec

    spec = load_spec(spec) if isinstance(spec, Path) else spec
    return profile(spec.replace(num_classes=num_classes), 224, method="analytic")["flops"]


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per network: mean, spread (max - min) and std over seeds, with FLOPs and training time."""
    grouped = rows.groupby("network", sort=False)
    table = grouped.agg(flops_224=("flops_224", "first"), flops=("flops", "first"), params=("params", "first"),
                        test_mean=("test_accuracy", "mean"), test_spread=("test_accuracy", lambda s: s.max() - s.min()),
                        test_std=("test_accuracy", "std"), val_mean=("val_accuracy", "mean"), seeds=("seed", "count"),
                        train_minutes=("wall_seconds", lambda s: s.mean() / 60))
    return table.reset_index()


def plot(table: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nas.plotting import save_plot

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for _, row in table.iterrows():
        searched = row["network"].startswith("search")
        ax.errorbar(row["flops_224"] / 1e6, row["test_mean"], yerr=row["test_spread"] / 2, fmt="*" if searched else "o",
                    ms=12 if searched else 7, capsize=3, label=row["network"])
    ax.set_xlabel("FLOPs at 224 px (millions)")
    ax.set_ylabel("test accuracy (mean; bar: spread over seeds)")
    ax.set_title(title)
    save_plot(fig, ax, path)


def finalists_rows(args: argparse.Namespace, out: Path, target: str, seeds: list[int],
                   rows: list[dict]) -> list[dict]:
    """Train each finalist of ``target``'s search on the first seed (the winner's run is the one already
    made), choose by held-out accuracy, train the choice on the other seeds: rows ``finalist-T-tN`` (one seed
    each) and ``search-T-finalists`` (every seed)."""
    from nas.search.run import open_run

    run = out / f"search-{target}"
    trial_spec = open_run(run, "finalists").trial_spec
    winner = int(json.loads((run / "best_b0.json").read_text())["provenance"]["trial"])
    new_rows, chosen, named = [], None, finalists(run, args.finalists)
    for trial, start in named:
        name = f"search-{target}" if trial == winner else f"finalist-{target}-t{trial}"  # the winner's runs reused
        result = run_training(run, args.data, args.resolution, args.epochs, seeds[0],
                              out / f"train-{name}-e{args.epochs}-r{args.resolution}-s{seeds[0]}", trial=trial)
        row = {**_row(f"finalist-{target}-t{trial}", seeds[0], result, trial_spec(trial)), "start_point": start}
        new_rows.append(row)
        say(f"finalist trial {trial}{f' (start point {start})' if start else ''}: val {row['val_accuracy']:.4f} "
            f"(test {row['test_accuracy']})")
        if chosen is None or row["val_accuracy"] > chosen[2]["val_accuracy"]:
            chosen = (trial, name, row)
    trial, name, first = chosen
    spec = trial_spec(trial)
    say(f"search-{target}-finalists: trial {trial} (best held-out accuracy of {len(named)})")
    new_rows.append({**first, "network": f"search-{target}-finalists"})
    for seed in seeds[1:]:
        result = run_training(run, args.data, args.resolution, args.epochs, seed,
                              out / f"train-{name}-e{args.epochs}-r{args.resolution}-s{seed}", trial=trial)
        new_rows.append({**_row(f"search-{target}-finalists", seed, result, spec), "start_point": first["start_point"]})
    return new_rows


def _row(network: str, seed: int, result: dict, spec: Path | Any) -> dict:
    return {"network": network, "seed": seed, "test_accuracy": result.get("test_accuracy"),
            "val_accuracy": result["val_accuracy"], "params": result["params"],
            "flops_224": flops_at_224(spec, result["num_classes"]), "flops": result["flops"],
            "wall_seconds": result.get("wall_seconds", float("nan"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="cifar10:../shared/data/cifar10")
    parser.add_argument("--resolution", type=int, default=32, help="nas-train's resolution (default: 32)")
    parser.add_argument("--targets", default="400M", help="comma-separated FLOPs targets, '' for none (default: 400M)")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the searched networks and EfficientNet-B0")
    parser.add_argument("--reference-seeds", help="seeds of MnasNet-A1 and MobileNetV2 (default: --seeds)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--finalists", type=int, default=0,
                        help="train the K best candidates of each search and its start points once, keep the best "
                             "by held-out accuracy (default: 0, the winner only)")
    parser.add_argument("--start-from", help="nas-search's --start-from (default: nas-search's default)")
    parser.add_argument("--space", help="nas-search's --space; the search then counts FLOPs and trains its proxy at "
                                        "--resolution (default: nas-search's default space, FLOPs at 224 px)")
    parser.add_argument("--searched", action="append", default=[], metavar="RUN",
                        help="also train the best_b0.json of this finished nas-search run (on --seeds), named "
                             "after its folder (search-<name> when the name does not start so); its "
                             "wall_seconds.txt, when there, is its search time")
    parser.add_argument("--cpus", type=int, help="nas-train's --cpus-per-worker (default: nas-train's)")
    parser.add_argument("--hand-fix", action="store_true",
                        help="also train B0 with a stride-1 stem, width-scaled to B0's FLOPs (on --seeds)")
    parser.add_argument("--recorded", metavar="CSV",
                        help="a previous runs.csv: each (network, seed) it holds is read from it, not trained again, "
                             "and its other networks join the tables (their run folders may be gone)")
    parser.add_argument("--networks", type=lambda text: [n for n in text.split(",") if n],
                        help="train only these networks (names as in the tables: efficientnet_b0, b0-stem1-scaled, "
                             "search-...), so that two runs of the script can share one --out on two cores "
                             "(default: every network)")
    parser.add_argument("--out", help="default: runs/real-data/<data name>")
    args = parser.parse_args()
    from nas.engine.runner import start_ray

    out = Path(args.out or Path("runs") / "real-data" / _slug(args.data.split(":", 1)[-1].rstrip("/").split("/")[-1]))
    out.mkdir(parents=True, exist_ok=True)
    start_ray(None)  # one Ray instance for every command below (each would otherwise start its own)
    specs: dict[str, Path] = {name: Path(REFERENCES) / f"{name}.json" for name in REFERENCE_NETWORKS}
    search_seconds = {}
    specs_found = []
    num_classes = load_data(args.data, args.resolution).num_classes
    if args.hand_fix:
        fixed = hand_fixed_b0(args.resolution, num_classes)
        specs[HAND_FIX] = out / f"{HAND_FIX}.json"
        specs[HAND_FIX].write_text(fixed.to_json() + "\n")
        say(f"hand-fixed B0: {fixed.name}")
    for target in [t for t in args.targets.split(",") if t]:
        options = ["--start-from", args.start_from] if args.start_from else []
        if args.space:
            options += ["--space", args.space, "--resolution", str(args.resolution)]
        counted = args.resolution if args.space else 224
        flops = str(b0_flops(counted, num_classes)) if target == "b0" else target
        spec, seconds = run_search(args.data, flops, out / f"search-{target}", options)
        specs[f"search-{target}"] = spec
        specs_found.append(f"search-{target}")
        search_seconds[target] = seconds
        say(f"search for {target}: {spec} ({seconds / 60:.1f} min)")
    plan = []  # seed by seed, so that a stopped run has every network on its first seeds
    reference_seeds = args.seeds if args.reference_seeds is None else args.reference_seeds  # '': none
    for name in specs:
        seeds = args.seeds if name in ("efficientnet_b0", HAND_FIX, *specs_found) else reference_seeds
        plan += [(int(seed), name) for seed in seeds.split(",") if seed]
    for run in map(Path, args.searched):
        name = run.name if run.name.startswith("search-") else f"search-{run.name}"
        specs[name] = run / "best_b0.json"
        plan += [(int(seed), name) for seed in args.seeds.split(",")]
        timing = run / "wall_seconds.txt"
        search_seconds[name] = float(timing.read_text()) if timing.is_file() else float("nan")
    if args.networks:
        plan = [(seed, name) for seed, name in plan if name in args.networks]
    recorded = pd.read_csv(args.recorded).to_dict("records") if args.recorded else []
    done = {(row["network"], int(row["seed"])) for row in recorded}
    rows = list(recorded)
    for seed, name in sorted(plan, key=lambda item: item[0]):
        if (name, seed) in done:
            continue
        result = run_training(specs[name], args.data, args.resolution, args.epochs, seed,
                              out / f"train-{name}-e{args.epochs}-r{args.resolution}-s{seed}",
                              options=("--cpus-per-worker", str(args.cpus)) if args.cpus else ())
        rows.append(_row(name, seed, result, specs[name]))
        say(f"{name} seed {seed}: test {result.get('test_accuracy')}, val {result['val_accuracy']:.4f}")
    seeds = [int(s) for s in args.seeds.split(",")]
    for target in ([t for t in search_seconds if not t.startswith("search-")] if args.finalists > 0 else ()):
        rows += finalists_rows(args, out, target, seeds, rows)
    frame = pd.DataFrame(rows)
    frame.to_csv(out / "runs.csv", index=False)
    table = summarise(frame)
    table.to_csv(out / "table.csv", index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    paired = paired_to_b0(frame)
    paired.to_csv(out / "paired.csv", index=False)
    print(paired.to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
    searched = [name for name in table["network"] if name.startswith("search-")]
    present = set(table["network"])
    compared = [name for name in (*REFERENCE_NETWORKS, HAND_FIX) if name in present]  # the rows this run has
    for name in searched:
        target = name if name in search_seconds else name.split("-")[1]
        found = table[table["network"] == name].iloc[0]
        for reference in compared:
            ref = table[table["network"] == reference].iloc[0]
            margin = found["test_mean"] - ref["test_mean"]
            noise = max(found["test_spread"], ref["test_spread"])
            print(f"{name} vs {reference}: {margin:+.4f} test accuracy ({'beyond' if abs(margin) > noise else 'within'}"
                  f" the seed spread {noise:.4f}) at {found['flops'] / ref['flops']:.2f}x its FLOPs at {args.resolution} px")
        if target in search_seconds:  # a search read from --recorded has no timing here
            print(f"{name}: {search_seconds[target] / 60:.1f} min of search")
    plot(table, out / "real_data.png", f"{out.name}: test accuracy after nas-train\n({args.epochs} epochs at "
         f"{args.resolution} px, seeds {args.seeds})")


if __name__ == "__main__":
    main()
