"""Does a search's winner beat EfficientNet-B0 when measured again? The honest second measurement.

    python -m benchmarks winner_recheck RUN [--seeds 3] [--first-seed 100] [--network efficientnet_b0 ... | --winner-only]

A search's best reward is the best of many noisy measurements, so it is flattered by selection. This trains
the run's ``best_b0.json`` again with the run's own proxy (data, budget, optimizer, resolution) under fresh
seeds that no trial of the search used, beside the shipped reference networks under the same seeds, and
scores every training with the run's reward. Prints one row per network (each seed's reward, mean and
spread) and the winner's margin over each reference, and writes ``RUN/recheck.csv``. Trains directly with
the trial code (no Ray); needs the machine to itself only for its seconds column.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import pandas as pd



def main() -> None:
    from nas.data.datasets import load_data
    from nas.search.driver import saved_config
    from benchmarks.proxy_scores import proxy_rewards
    from search_spaces import REFERENCES
    from search_spaces.spec import load_spec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a nas-search run directory (best_b0.json, search.json)")
    parser.add_argument("--seeds", type=int, default=3, help="trainings per network (default: 3)")
    parser.add_argument("--first-seed", type=int, default=100,
                        help="the first training seed; a search's trials use seed + trial number (default: 100)")
    parser.add_argument("--network", action="append", dest="networks",
                        help="a shipped reference network to compare with (default: all three)")
    parser.add_argument("--winner-only", action="store_true", help="train the winner alone, no reference")
    args = parser.parse_args()

    config = saved_config(args.run)
    data = load_data(config.proxy.data, config.proxy.resolution, config.proxy.val_fraction, config.proxy.seed)
    names = [] if args.winner_only else (args.networks or sorted(p.stem for p in REFERENCES.glob("*.json")))
    networks = {"winner": load_spec(args.run / "best_b0.json")}
    networks.update({name: load_spec(REFERENCES / f"{name}.json") for name in names})
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"{args.run}: proxy {config.proxy.steps or config.proxy.epochs} {'steps' if config.proxy.steps else 'epochs'}, "
          f"{config.proxy.optimizer}, {data.describe()}; target {config.objective.describe_target()}, seeds {list(seeds)}",
          flush=True)
    frame = proxy_rewards(networks, data, config, list(seeds), log=lambda line: print(line, flush=True))
    frame.to_csv(args.run / "recheck.csv", index=False)
    searched = load_spec(args.run / "best_b0.json").metrics.get("reward")
    print(f"\nreward in the search (best of {len(pd.read_csv(args.run / 'trials.csv'))} candidates): {searched}")
    means = {}
    for name, group in frame.groupby("network", sort=False):
        rewards = group["reward"].tolist()
        means[name] = statistics.mean(rewards)
        spread = statistics.stdev(rewards) if len(rewards) > 1 else 0.0
        print(f"{name:>16}: mean reward {means[name]:.4f} (sd {spread:.4f}; "
              f"{', '.join(f'{r:.4f}' for r in rewards)})")
    for name in names:
        print(f"winner - {name}: {means['winner'] - means[name]:+.4f}")
    print(f"written to {args.run / 'recheck.csv'}")


if __name__ == "__main__":
    main()
