"""How steady is a proxy training recipe? Seed noise against the spread between architectures, per recipe.

A proxy ranks architectures only if one run of it tells a network from itself: the same architecture trained
with two seeds must land closer together than different architectures do. For each recipe (a set of
``TrainBudget`` overrides) this trains the same models (architectures sampled across the FLOPs window of the
target, plus the shipped reference networks) with ``--seeds`` seeds, directly with the trainer (no Ray), and
prints per recipe:

- ``noise``: the mean over models of the standard deviation of held-out accuracy across seeds;
- ``spread``: the standard deviation across models of their mean accuracy;
- ``reliability``: between-model variance / (between + within), the intraclass correlation (1: seeds agree
  perfectly, 0: the proxy measures only noise);
- ``tau seeds``: Kendall tau-b of the models' accuracy under seed 0 against seed 1;
- with ``--reference-steps``, ``tau ref``: Kendall tau-b of the seed-averaged proxy accuracy, and of the first
  seed alone, against one longer training with SGD (its own seed).

``base`` is the trainer's defaults (AdamW since this benchmark chose it); other recipes override them.

    PYTHONPATH=. python benchmarks/proxy_noise.py --models 7 --seeds 2 --reference-steps 1200 \\
        --recipe optimizer=sgd --recipe optimizer=adamw --out benchmarks/results/proxy_noise.csv

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
from nas.proxy_check.rank_stats import kendall_tau_b
from nas.training.budget import TrainBudget
from nas.training.proxy import train_candidate

REFERENCE_SEED = 99


def parse_recipe(text: str) -> dict[str, object]:
    """``base`` or ``key=value,key=value`` over TrainBudget's fields."""
    if text == "base":
        return {}
    fields = {f.name: f.type for f in dataclasses.fields(TrainBudget)}
    out: dict[str, object] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key not in fields:
            raise SystemExit(f"--recipe {text!r}: {key!r} is not a TrainBudget field ({', '.join(fields)})")
        out[key] = value if key == "optimizer" else (int(value) if key in ("steps", "batch_size") else float(value))
    return out


def reliability(table: pd.DataFrame) -> float:
    """Intraclass correlation ICC(1): rows are models, columns seeds."""
    k = table.shape[1]
    grand = table.values.mean()
    between = k * ((table.mean(axis=1) - grand) ** 2).sum() / (len(table) - 1)
    within = ((table.values - table.mean(axis=1).values[:, None]) ** 2).sum() / (len(table) * (k - 1))
    return float((between - within) / (between + (k - 1) * within))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", action="append", default=None, help="base, or TrainBudget overrides")
    parser.add_argument("--models", type=int, default=7, help="sampled architectures (plus 3 references)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300, help="the recipes' steps")
    parser.add_argument("--reference-steps", type=int, default=0, help="0: no reference training")
    parser.add_argument("--target-flops", type=float, default=400e6)
    parser.add_argument("--proxy-resolution", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/proxy_noise.csv")
    args = parser.parse_args(argv)
    recipes = args.recipe or ["base"]
    torch.set_num_threads(args.threads)

    search = SearchConfig(target_flops=int(args.target_flops), out="unused", steps=args.steps,
                          proxy_resolution=args.proxy_resolution)
    data = load_data(search.data, search.proxy_resolution, search.val_fraction, search.seed)
    candidates = sample_stratified(ProxyCheckConfig(search, models=args.models), data.num_classes, args.models,
                                   seed=0)
    candidates += reference_candidates(search, data.num_classes)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = pd.read_csv(out) if out.is_file() else pd.DataFrame(columns=["recipe", "model", "seed"])
    have = {(r.recipe, r.model, int(r.seed)) for r in done.itertuples()}

    jobs = [(recipe, c, seed) for seed in range(args.seeds) for recipe in recipes for c in candidates]
    jobs += [("reference", c, REFERENCE_SEED) for c in candidates] if args.reference_steps else []
    for recipe, candidate, seed in jobs:
        if (recipe, candidate.name, seed) in have:
            continue
        overrides = ({"steps": args.reference_steps, "optimizer": "sgd"} if recipe == "reference"
                     else parse_recipe(recipe))
        budget = TrainBudget(**{"steps": args.steps, **overrides})
        started = time.perf_counter()
        result = train_candidate(candidate.spec, data, budget, device="cpu", seed=seed)
        row = dict(recipe=recipe, model=candidate.name, seed=seed, steps=budget.steps,
                   accuracy=result["accuracy"], status=result["status"],
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
          f"{'tau ref (avg)':>13s} {'tau ref (1 seed)':>16s} {'s/model':>7s}")
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
            line += f" {tau_avg:13.2f} {tau_one:16.2f}"
        else:
            line += f" {'':13s} {'':16s}"
        print(line + f" {seconds:7.1f}")
    if len(reference):
        print(f"reference: {len(reference)} models, accuracy {reference.min():.3f}..{reference.max():.3f}, "
              f"{rows[rows.recipe == 'reference'].seconds.mean():.0f} s each")


if __name__ == "__main__":
    sys.exit(main())
