"""How steady is a proxy training recipe, and how well does it rank real networks? Per recipe: seed noise
against the spread between architectures, and rank agreement with a real training.

A proxy ranks architectures only if one run of it tells a network from itself: the same architecture trained
with two seeds must land closer together than different architectures do. For each recipe (a set of
``TrainRecipe`` overrides, plus ``proxy_resolution``) this trains the same models (architectures sampled
across the FLOPs window of the target, plus the shipped reference networks) with ``--seeds`` seeds, directly
with the trainer (no Ray), on ``--data``, and prints per recipe:

- ``noise``: the mean over models of the standard deviation of held-out accuracy across seeds;
- ``spread``: the standard deviation across models of their mean accuracy;
- ``reliability``: between-model variance / (between + within), the intraclass correlation (1: seeds agree
  perfectly, 0: the proxy measures only noise);
- ``tau seeds``: Kendall tau-b of the models' accuracy under seed 0 against seed 1;
- with two or more recipes, Kendall tau-b of each recipe's seed 0 against the first recipe's seed 0, beside
  the first recipe's seed-to-seed tau (does the change reorder the models, or only move them?);
- with ``--reference-epochs``, ``tau ref``: Kendall tau-b of the seed-averaged proxy accuracy, and of the
  first seed alone, against one real training of each model by nas-train's recipe (``TrainRecipe``:
  AdamW, warm-up and cosine, augmentation, EMA) for that many epochs at ``--reference-resolution``, its
  held-out accuracy (the better of raw and EMA weights at the best epoch, as nas-train keeps it).

``base`` is the trainer's defaults (what nas-search uses); other recipes override them, e.g.
``steps=600``, ``batch_size=128,lr=0.006``, ``proxy_resolution=48``.

    python -m benchmarks proxy_noise --data cifar10:../shared/data/cifar10 --models 7 --seeds 2 \
        --reference-epochs 8 --recipe base --recipe steps=600 --out benchmarks/results/proxy_noise_cifar10.csv

Rows are appended to ``--out`` (CSV) as they finish and reused when run again, so an interrupted run goes on
where it stopped. Run it with the machine to itself.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from nas.search.config import SearchConfig
from nas.data.datasets import load_data
from nas.proxy_check.candidates import reference_candidates, sample_stratified
from nas.proxy_check.config import ProxyCheckConfig
from nas.proxy_check.rank_stats import bootstrap_interval, kendall_tau_b
from nas.training.recipe import TrainRecipe, proxy_recipe
from nas.training.proxy import train_candidate

REFERENCE_SEED = 99
INTEGER_KEYS = ("steps", "batch_size", "proxy_resolution")


def parse_recipe(text: str) -> dict[str, object]:
    """``base`` or ``key=value,key=value`` over TrainBudget's fields."""
    if text == "base":
        return {}
    fields = {f.name: f.type for f in dataclasses.fields(TrainRecipe)} | {"proxy_resolution": int}
    out: dict[str, object] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key not in fields:
            raise SystemExit(f"--recipe {text!r}: {key!r} is not a TrainRecipe field ({', '.join(fields)})")
        out[key] = value if key == "optimizer" else (int(value) if key in INTEGER_KEYS else float(value))
    return out


def reliability(table: pd.DataFrame) -> float:
    """Intraclass correlation ICC(1): rows are models, columns seeds."""
    k = table.shape[1]
    grand = table.values.mean()
    between = k * ((table.mean(axis=1) - grand) ** 2).sum() / (len(table) - 1)
    within = ((table.values - table.mean(axis=1).values[:, None]) ** 2).sum() / (len(table) * (k - 1))
    return float((between - within) / (between + (k - 1) * within))


def reference_accuracy(spec, data, epochs: int, work: Path) -> float:
    """Held-out accuracy of one real training of ``spec`` by nas-train's recipe (its own seed)."""
    import tempfile

    from nas.training.full import train_network
    from nas.training.recipe import TrainRecipe

    with tempfile.TemporaryDirectory(dir=work) as out:
        final = train_network(spec, data, TrainRecipe(epochs=epochs, seed=REFERENCE_SEED), out, device="cpu")
    return float(final["val_accuracy"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", action="append", default=None, help="base, or TrainRecipe overrides")
    parser.add_argument("--data", default="synthetic", help="as nas-search --data (default: synthetic)")
    parser.add_argument("--models", type=int, default=7, help="sampled architectures (plus 3 references)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300, help="the recipes' steps")
    parser.add_argument("--reference-epochs", type=int, default=0,
                        help="epochs of nas-train's recipe for the reference ranking (0: none)")
    parser.add_argument("--reference-resolution", type=int, default=None,
                        help="the reference training's resolution (default: --proxy-resolution)")
    parser.add_argument("--target-flops", type=float, default=400e6)
    parser.add_argument("--proxy-resolution", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/proxy_noise.csv")
    args = parser.parse_args(argv)
    recipes = args.recipe or ["base"]
    torch.set_num_threads(args.threads)

    search = SearchConfig.of(target_flops=int(args.target_flops), out="unused", steps=args.steps, data=args.data,
                          proxy_resolution=args.proxy_resolution)
    loaded: dict[int, object] = {}

    def data_at(resolution: int):
        if resolution not in loaded:
            loaded[resolution] = load_data(search.proxy.data, resolution, search.proxy.val_fraction, search.proxy.seed)
        return loaded[resolution]

    data = data_at(search.proxy.resolution)
    candidates = sample_stratified(ProxyCheckConfig(search, models=args.models), search.search_space(),
                                   data.num_classes, args.models, seed=0)
    candidates += reference_candidates(search, data.num_classes)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = pd.read_csv(out) if out.is_file() else pd.DataFrame(columns=["recipe", "model", "seed"])
    have = {(r.recipe, r.model, int(r.seed)) for r in done.itertuples()}

    jobs = [(recipe, c, seed) for seed in range(args.seeds) for recipe in recipes for c in candidates]
    jobs += [("reference", c, REFERENCE_SEED) for c in candidates] if args.reference_epochs else []
    for recipe, candidate, seed in jobs:
        if (recipe, candidate.name, seed) in have:
            continue
        started = time.perf_counter()
        if recipe == "reference":
            resolution = args.reference_resolution or args.proxy_resolution
            accuracy = reference_accuracy(candidate.spec, data_at(resolution), args.reference_epochs, out.parent)
            status, steps = "ok", args.reference_epochs
        else:
            overrides = parse_recipe(recipe)
            resolution = int(overrides.pop("proxy_resolution", args.proxy_resolution))
            budget = TrainRecipe.from_dict({**proxy_recipe(steps=args.steps).to_dict(), **overrides})
            result = train_candidate(candidate.spec, data_at(resolution), budget, device="cpu", seed=seed)
            accuracy, status, steps = result["accuracy"], result["status"], budget.steps
        row = dict(recipe=recipe, model=candidate.name, seed=seed, steps=steps, accuracy=accuracy, status=status,
                   seconds=round(time.perf_counter() - started, 1))
        pd.DataFrame([row]).to_csv(out, mode="a", header=not out.is_file() or out.stat().st_size == 0,
                                   index=False)
        print(f"{recipe:32s} {candidate.name:18s} seed {seed}: {row['accuracy']:.3f} ({row['seconds']} s)",
              flush=True)

    report(pd.read_csv(out), recipes, [c.name for c in candidates])
    return 0


def report(rows: pd.DataFrame, recipes: list[str], models: list[str]) -> None:
    rows = rows[rows.model.isin(models)]
    reference = rows[rows.recipe == "reference"].set_index("model").accuracy
    print(f"\n{'recipe':32s} {'mean acc':>8s} {'noise':>6s} {'spread':>6s} {'reliab.':>7s} {'tau seeds':>9s} "
          f"{'tau ref (avg)':>13s} {'90% interval':>13s} {'tau ref (1 seed)':>16s} {'s/model':>7s}")
    for recipe in recipes:
        table = rows[rows.recipe == recipe].pivot_table(index="model", columns="seed", values="accuracy")
        table = table.dropna()
        if table.shape[1] < 2 or len(table) < 3:
            continue
        seconds = rows[rows.recipe == recipe].seconds.mean()
        tau_seeds = kendall_tau_b(table.iloc[:, 0], table.iloc[:, 1])
        line = (f"{recipe:32s} {table.values.mean():8.3f} {table.std(axis=1).mean():6.3f} "
                f"{table.mean(axis=1).std():6.3f} {reliability(table):7.2f} {tau_seeds:9.2f}")
        common = table.index.intersection(reference.index)
        if len(common) >= 3:
            tau_avg = kendall_tau_b(table.loc[common].mean(axis=1), reference.loc[common])
            tau_one = kendall_tau_b(table.loc[common].iloc[:, 0], reference.loc[common])
            low, high = bootstrap_interval(kendall_tau_b, table.loc[common].mean(axis=1).to_numpy(),
                                           reference.loc[common].to_numpy())
            line += f" {tau_avg:13.2f} {f'[{low:.2f}, {high:.2f}]':>13s} {tau_one:16.2f}"
        else:
            line += f" {'':13s} {'':13s} {'':16s}"
        print(line + f" {seconds:7.1f}")
    if len(reference):
        print(f"reference: {len(reference)} models, accuracy {reference.min():.3f}..{reference.max():.3f}, "
              f"{rows[rows.recipe == 'reference'].seconds.mean():.0f} s each")
    cross_recipe(rows, recipes)


def cross_recipe(rows: pd.DataFrame, recipes: list[str]) -> None:
    """Does another recipe rank the models as the first one does? Kendall tau-b of each recipe's seed-0
    accuracies against the first recipe's seed 0, beside the first recipe's own seed 0 against seed 1: a
    recipe whose tau is as high as the seed-to-seed tau orders the models as the first does (its change
    does not matter to the ranking); a much lower one orders them differently."""
    if len(recipes) < 2:
        return
    first = rows[rows.recipe == recipes[0]].pivot_table(index="model", columns="seed", values="accuracy")
    if 0 not in first.columns:
        return
    print(f"\nagainst {recipes[0]} seed 0 (Kendall tau-b, 90% interval, models):")
    versus = [(f"{recipes[0]} seed 1", first[1])] if 1 in first.columns else []
    versus += [(f"{recipe} seed 0", rows[(rows.recipe == recipe) & (rows.seed == 0)].set_index("model").accuracy)
               for recipe in recipes[1:]]
    for label, other in versus:
        both = pd.concat([first[0], other], axis=1, join="inner").dropna()
        if len(both) < 3:
            continue
        x, y = both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy()
        low, high = bootstrap_interval(kendall_tau_b, x, y)
        print(f"  {label:32s} {kendall_tau_b(x, y):5.2f} [{low:.2f}, {high:.2f}] {len(both)}")


if __name__ == "__main__":
    sys.exit(main())
