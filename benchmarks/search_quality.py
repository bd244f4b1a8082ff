"""What a search finds for a budget of training steps: controllers x (pre-screen, ASHA), against the shipped nets.

    python -m benchmarks search_quality [--seeds 3] [--steps 100] [--budget 12] [--target 400M]
                                        [--controllers random,evolution,ppo] [--configs plain,screen,asha,both]
                                        [--out benchmarks/results/search_quality]

Every configuration runs a search through ``nas.api`` (in its own process, no cache, as a user would) with the same
proxy (``--steps`` per candidate) until it has spent ``--budget`` x ``--steps`` training steps (a stopped
candidate counts the steps it reached, a screened one none); the best reward found within that budget is
read from trials.csv in the order the candidates finished. The three reference networks are trained with the
same proxy budget (one per seed) and scored with the same reward at 224 px. Writes ``search_quality.csv``
(one row per run), ``curves.csv`` and ``search_quality.png`` (best reward against steps spent, one line per
configuration, mean over seeds; the references as horizontal lines), and prints the table.
Needs the machine to itself: a second CPU job slows trials several times (wall times are reported:
``trial_seconds`` sums the candidates within the budget, ``seconds`` is the whole search).
Every search is kept under ``--out``/runs and read instead of repeated when the benchmark runs again.
"""
from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import pandas as pd

import nas.api
from benchmarks import processes

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {"plain": {"flops_window": (0, float("inf")), "scheduler": "none"},
           "screen": {"flops_window": (0.5, 1.5), "scheduler": "none"},
           "asha": {"flops_window": (0, float("inf")), "scheduler": "asha"},
           "both": {"flops_window": (0.5, 1.5), "scheduler": "asha"}}


def steps_spent(trials: pd.DataFrame, steps: int) -> pd.Series:
    """Training steps each candidate cost: the full proxy, the rung a stopped one reached, 0 when screened."""
    spent = pd.Series(steps, index=trials.index, dtype=float)
    if "steps" in trials:
        stopped = trials["status"] == "stopped"
        spent[stopped] = trials.loc[stopped, "steps"].astype(float)
    spent[trials["status"] == "screened"] = 0.0
    spent[trials["source"] == "cache"] = 0.0
    return spent


def curve(trials: pd.DataFrame, steps: int, budget: int) -> pd.DataFrame:
    """Best reward of a trained candidate against cumulative steps, in finishing order, cut at ``budget``."""
    trials = trials.reset_index(drop=True)
    spent = steps_spent(trials, steps).cumsum()
    reward = trials["reward"].where(trials["status"] == "ok", 0.0).cummax()
    frame = pd.DataFrame({"steps": spent, "best": reward, "status": trials["status"],
                          "seconds": trials["seconds"].astype(float)})
    return frame[frame["steps"] <= budget]


def run_search(out: Path, controller: str, config: str, seed: int,
               args: argparse.Namespace) -> tuple[float, pd.DataFrame]:
    """One search into ``out`` (kept under --out/runs); a run already there is read, not repeated."""
    wall = out / "wall_seconds.txt"
    if (out / "trials.csv").exists() and not (out / "running").exists():
        seconds = float(wall.read_text()) if wall.exists() else float("nan")
        return seconds, pd.read_csv(out / "trials.csv", keep_default_na=False)
    # enough candidates to spend the budget: ASHA stops about half of them at a quarter of the steps, so a
    # candidate costs about 0.4 of the full proxy on average
    trials = math.ceil(args.budget * (args.asha_factor if CONFIGS[config]["scheduler"] == "asha" else 1))
    out.mkdir(parents=True, exist_ok=True)
    (out / "running").touch()
    seconds = processes.timed(nas.api.search, args.target, data=args.data, trials=trials, steps=args.steps,
                              controller=controller, seed=seed, out=out, no_cache=True, **CONFIGS[config])
    (out / "running").unlink()
    wall.write_text(f"{seconds:.1f}\n")
    return seconds, pd.read_csv(out / "trials.csv", keep_default_na=False)


def reference_rewards(args: argparse.Namespace, seeds: list[int]) -> pd.DataFrame:
    """The shipped networks trained with the proxy budget (one training per seed), scored like a candidate."""
    from nas.data.datasets import load_data
    from nas.search.config import SearchConfig
    from nas.search.reward import parse_flops
    from benchmarks.proxy_scores import proxy_rewards
    from search_spaces import REFERENCES
    from search_spaces.spec import load_spec

    networks = {path.stem: load_spec(path) for path in sorted(REFERENCES.glob("*.json"))}
    frames = []
    for seed in seeds:  # the data split follows the seed, as in each search
        config = SearchConfig.of(target_flops=parse_flops(args.target), out="unused", steps=args.steps, seed=seed,
                              cpus_per_trial=2, data=args.data)
        data = load_data(config.proxy.data, config.proxy.resolution, config.proxy.val_fraction, config.proxy.seed)
        frames.append(proxy_rewards(networks, data, config, [seed]))
    return pd.concat(frames, ignore_index=True)


def plot(curves: pd.DataFrame, references: pd.DataFrame, budget: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nas.plotting import save_plot

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    grid = list(range(0, budget + 1, max(1, budget // 60)))
    for (controller, config), group in curves.groupby(["controller", "config"]):
        means = []
        for x in grid:
            best = [g[g["steps"] <= x]["best"].max() if (g["steps"] <= x).any() else math.nan
                    for _, g in group.groupby("seed")]
            best = [b for b in best if b == b]
            means.append(statistics.mean(best) if best else math.nan)
        ax.plot(grid, means, label=f"{controller} {config}", lw=1.4)
    for network, group in references.groupby("network"):
        ax.axhline(group["reward"].mean(), ls="--", lw=1, color="black" if "efficientnet" in network else "grey",
                   label=f"{network} (mean of {len(group)})")
    ax.set_xlabel("training steps spent")
    ax.set_ylabel("best reward found (mean over seeds)")
    ax.set_title("search quality for a budget of training steps")
    save_plot(fig, ax, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100, help="proxy steps per candidate")
    parser.add_argument("--budget", type=int, default=12, help="budget in full candidates (x --steps steps)")
    parser.add_argument("--target", default="400M")
    parser.add_argument("--data", default="synthetic", help="as nas-search --data, e.g. cifar10:../shared/data/cifar10")
    parser.add_argument("--controllers", default="random,evolution,ppo")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--asha-factor", type=float, default=2.5,
                        help="candidates started with ASHA, per full candidate of the budget (default: 2.5)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "search_quality",
                        help="where the CSVs, the plot and runs/ (every search, reused when run again) go")
    args = parser.parse_args()
    budget = args.budget * args.steps
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    saved = args.out / "references.csv"
    references = pd.read_csv(saved) if saved.exists() else reference_rewards(args, seeds)
    if sorted(set(references["seed"])) != seeds:
        references = reference_rewards(args, seeds)
    references.to_csv(saved, index=False)
    rows, curves = [], []
    for controller in args.controllers.split(","):
        for config in args.configs.split(","):
            for seed in seeds:
                seconds, trials = run_search(args.out / "runs" / f"{controller}-{config}-{seed}", controller,
                                             config, seed, args)
                c = curve(trials, args.steps, budget)
                curves.append(c.assign(controller=controller, config=config, seed=seed))
                counts = c["status"].value_counts()
                rows.append({"controller": controller, "config": config, "seed": seed,
                             "best_reward": float(c["best"].max()) if len(c) else 0.0,
                             "steps": int(c["steps"].max()) if len(c) else 0, "seconds": round(seconds, 1),
                             "trial_seconds": round(float(c["seconds"].sum()), 1),
                             **{k: int(counts.get(k, 0)) for k in ("ok", "stopped", "failed", "screened")}})
                print(f"{controller:>9} {config:>6} seed {seed}: best {rows[-1]['best_reward']:.4f} "
                      f"({rows[-1]['ok']} trained, {rows[-1]['stopped']} stopped, "
                      f"{rows[-1]['screened']} screened) in {seconds:.0f}s", flush=True)
    runs = pd.DataFrame(rows)
    runs.to_csv(args.out / "search_quality.csv", index=False)
    all_curves = pd.concat(curves, ignore_index=True)
    all_curves.to_csv(args.out / "curves.csv", index=False)
    references.to_csv(args.out / "references.csv", index=False)
    plot(all_curves, references, budget, args.out / "search_quality.png")
    table = runs.groupby(["controller", "config"]).agg(
        best_mean=("best_reward", "mean"), best_sd=("best_reward", "std"), trained=("ok", "mean"),
        stopped=("stopped", "mean"), screened=("screened", "mean"), trial_seconds=("trial_seconds", "mean"),
        seconds=("seconds", "mean")).round(4)
    print(f"\nbudget {budget} training steps ({args.budget} x {args.steps}), target {args.target}, "
          f"{args.seeds} seeds; mean over seeds")
    print(table.to_string())
    ref = references.groupby("network").agg(reward=("reward", "mean"), sd=("reward", "std"),
                                            accuracy=("accuracy", "mean"), flops=("flops", "first")).round(4)
    print("\nreference networks, same proxy budget:")
    print(ref.to_string())
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
