"""Controllers on a synthetic objective with a known optimum: no training, seconds per run.

The objective over the MnasNet space (seeded): per-decision effects, pairwise interactions between the same
decision of neighbouring blocks, a gain from FLOPs (bigger nets are more accurate) and MnasNet's soft
penalty from the analytic FLOPs of the decoded spec against a target, plus Gaussian observation noise. The
optimum is found by coordinate ascent on the noise-free objective from many random starts. ``--landscape
rugged`` adds interacting triples of decisions anywhere in the network (many local optima; the optimum is
then the best of the restarts, a lower bound) and triples the noise.

    python -m benchmarks controller_landscapes [--seeds 10] [--samples 300] [--concurrency 1] [--landscape rugged]
                                     [--flops-window LO,HI] [--screened-reward zero|floor|none]

Prints, per controller, the mean over seeds of the best (noise-free) reward found after 25/50/100/200/300
samples as a fraction of the optimum, and the median number of samples to reach 99% of the optimum.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from functools import lru_cache

import numpy as np


from controllers import CONTROLLERS, make_controller
from nas.network.counting import profile
from search_spaces.mnasnet import MnasNetSpace

CHECKPOINTS = (25, 50, 100, 200, 300)
# the realistic landscape's proxy accuracy: spread across networks and seed noise of one measurement, as
# benchmarks/proxy_noise.py measured them on clothing10 (../shared/data/clothing10, 300 AdamW steps at 32 px,
# 8 networks x 2 seeds: benchmarks/results/proxy_noise_clothing10.csv)
REAL_SPREAD, REAL_NOISE = 0.066, 0.020


class SyntheticObjective:
    """A seeded stand-in for proxy accuracy x MnasNet's FLOPs penalty."""

    def __init__(self, space: MnasNetSpace, seed: int, target_flops: float = 300e6, w: float = -0.07,
                 noise: float = 0.01, sharpness: float = 2.0, rugged: bool = False,
                 realistic_spread: float | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.space, self.target, self.w, self.noise = space, target_flops, w, noise
        self.sharpness = sharpness
        self.realistic_spread = realistic_spread
        # decisions differ in importance (a few matter a lot, most a little), as in real search spaces
        importance = rng.exponential(1.0, len(space.sizes)) ** 2
        if realistic_spread is not None:  # six decisions matter, the other 36 a little
            importance = np.full(len(space.sizes), 0.15)
            major = rng.choice(len(space.sizes), 6, replace=False)
            importance[major] = 1.0
        self.effects = [rng.normal(0, imp, n) for imp, n in zip(importance, space.sizes)]
        per_block = 6
        self.pairs = []
        for i in range(len(space.sizes) - per_block):
            j = i + per_block  # the same decision in the next block
            spread = 0.7 * math.sqrt(importance[i] * importance[j])
            self.pairs.append((i, j, rng.normal(0, spread, (space.sizes[i], space.sizes[j]))))
        if realistic_spread is not None:  # and the ones that matter interact with each other
            for a, i in enumerate(major):
                for j in major[a + 1:]:
                    self.pairs.append((int(i), int(j), rng.normal(0, 0.6, (space.sizes[i], space.sizes[j]))))
        self.triples = []
        if rugged:  # epistasis: triples of decisions anywhere in the net whose joint choice matters a lot,
            # so that changing one decision alone often hurts (many local optima), and noisier observations
            for _ in range(3 * space.num_blocks):
                i, j, k = (int(v) for v in rng.choice(len(space.sizes), 3, replace=False))
                spread = 1.5 * float(np.mean(importance))
                self.triples.append((i, j, k, rng.normal(0, spread, (space.sizes[i], space.sizes[j], space.sizes[k]))))
            self.effects = [e * 0.5 for e in self.effects]
        variance = sum(float(np.var(e)) for e in self.effects) + sum(float(np.var(t)) for _, _, t in self.pairs)
        variance += sum(float(np.var(t)) for *_, t in self.triples)
        self.scale = math.sqrt(variance)
        self.seed = seed
        self.reset_noise()
        self._flops = lru_cache(maxsize=None)(self._count_flops)

    def _count_flops(self, choices: tuple[int, ...]) -> int:
        return profile(self.space.decode(choices), method="analytic")["flops"]

    def true_reward(self, choices) -> float:
        choices = tuple(int(c) for c in choices)
        score = sum(e[c] for e, c in zip(self.effects, choices))
        score += sum(t[choices[i], choices[j]] for i, j, t in self.pairs)
        score += sum(t[choices[i], choices[j], choices[k]] for i, j, k, t in self.triples)
        ratio = self._flops(choices) / self.target
        if self.realistic_spread is not None:  # proxy accuracy: mean 0.40, the measured spread across networks
            accuracy = min(0.95, max(0.05, 0.40 + self.realistic_spread * score / self.scale))
        else:
            accuracy = 0.3 + 0.6 / (1 + math.exp(-self.sharpness * score / self.scale))
        # MnasNet calibrated w = -0.07 so that doubling FLOPs buys about 5% relative accuracy: under the target
        # the gain from FLOPs cancels the soft penalty; above it the gain is smaller (diminishing returns)
        accuracy *= ratio ** (-self.w if ratio <= 1 else -self.w / 3)
        return accuracy * ratio ** self.w

    def reset_noise(self) -> None:
        """Restart the observation noise, so every controller's run sees the same noise stream."""
        self.noise_rng = np.random.default_rng(self.seed + 10_000)

    def observe(self, choices) -> float:
        return self.true_reward(choices) + float(self.noise_rng.normal(0, self.noise))

    def optimum(self, restarts: int = 100, seed: int = 0) -> float:
        """Coordinate ascent on the noise-free objective from ``restarts`` random starts."""
        rng = np.random.default_rng(seed)
        best = -math.inf
        for _ in range(restarts):
            x = self.space.sample(rng)
            value = self.true_reward(x)
            improved = True
            while improved:
                improved = False
                for i, n in enumerate(self.space.sizes):
                    for c in range(n):
                        if c != x[i]:
                            y = list(x)
                            y[i] = c
                            v = self.true_reward(y)
                            if v > value + 1e-12:
                                x, value, improved = y, v, True
            best = max(best, value)
        return best


def screened_reward(rule: str, rewards: list[float]) -> float | None:
    """What the controller is told for a candidate the FLOPs pre-screen kept from training (None: nothing)."""
    if rule == "zero":
        return 0.0
    if rule == "floor":  # the lowest reward observed so far: below every trained candidate, on the same scale
        return min(rewards) if rewards else 0.0
    return None


def parse_variant(text: str) -> tuple[str, dict[str, float]]:
    """``ppo`` or ``ppo[rank_window=50,warmup=8]``: a controller and options of it."""
    name, _, rest = text.partition("[")
    options = {}
    for part in filter(None, rest.rstrip("]").split(";")):
        key, _, value = part.partition("=")
        options[key] = int(value) if value.lstrip("-").isdigit() else float(value)
    return name, options


def run(name: str, objective: SyntheticObjective, seed: int, samples: int, concurrency: int,
        window: tuple[float, float] | None = None, rule: str = "zero", counts: dict[str, int] | None = None
        ) -> list[float]:
    """True rewards of the samples one controller proposes, in order.

    With ``window`` (fractions of the target), proposals whose analytic FLOPs fall outside it are screened:
    not counted as samples, told ``screened_reward(rule)``; ``counts["screened"]`` adds them up.
    """
    controller_name, options = parse_variant(name)
    controller = make_controller(controller_name, objective.space, seed=seed, **options)
    objective.reset_noise()
    rewards: list[float] = []
    observed: list[float] = []

    def ask() -> list[int]:
        for _ in range(10_000):
            choices = controller.ask()
            ratio = objective._flops(tuple(choices)) / objective.target
            if window is None or window[0] <= ratio <= window[1]:
                return choices
            if counts is not None:
                counts["screened"] = counts.get("screened", 0) + 1
            told = screened_reward(rule, observed)
            if told is not None:
                controller.tell(choices, told)
        raise RuntimeError("10,000 proposals in a row were screened")

    outstanding = [ask() for _ in range(min(concurrency, samples))]
    while outstanding:
        choices = outstanding.pop(0)
        rewards.append(objective.true_reward(choices))
        observed.append(objective.observe(choices))
        controller.tell(choices, observed[-1])
        if len(rewards) + len(outstanding) < samples:
            outstanding.append(ask())
    return rewards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=1, help="asks outstanding before each tell")
    parser.add_argument("--controllers", default=",".join(CONTROLLERS),
                        help="comma-separated; a controller's options in brackets, separated by semicolons: "
                             "ppo[rank_window=50;warmup=8]")
    parser.add_argument("--landscape", choices=("smooth", "rugged", "realistic"), default="smooth",
                        help="rugged: interacting triples of decisions (many local optima) and 3x the noise; "
                             "realistic: six decisions matter and interact, the rest little, accuracy spread and "
                             "noise as measured on real data (--spread, --noise)")
    parser.add_argument("--spread", type=float, default=REAL_SPREAD,
                        help=f"realistic: std of proxy accuracy across networks (default: {REAL_SPREAD})")
    parser.add_argument("--noise", type=float, default=REAL_NOISE,
                        help=f"realistic: std of one proxy measurement across seeds (default: {REAL_NOISE})")
    parser.add_argument("--flops-window", default=None, metavar="LO,HI",
                        help="screen proposals outside LO..HI x target (not counted as samples)")
    parser.add_argument("--screened-reward", default="zero", choices=("zero", "floor", "none"),
                        help="what a screened proposal is told: 0, the lowest reward so far, or nothing")
    args = parser.parse_args()
    window = tuple(float(v) for v in args.flops_window.split(",")) if args.flops_window else None
    names = args.controllers.split(",")  # options inside brackets use ";", so "," only separates controllers
    space = MnasNetSpace()
    checkpoints = [c for c in CHECKPOINTS if c <= args.samples]
    results: dict[str, list[list[float]]] = {n: [] for n in names}
    optima = []
    seconds = {n: 0.0 for n in names}
    screened = {n: {"screened": 0} for n in names}
    for seed in range(args.seeds):
        rugged, realistic = args.landscape == "rugged", args.landscape == "realistic"
        noise = args.noise if realistic else 0.03 if rugged else 0.01
        objective = SyntheticObjective(space, seed, noise=noise, rugged=rugged,
                                       realistic_spread=args.spread if realistic else None)
        optimum = objective.optimum()
        optima.append(optimum)
        for name in names:
            start = time.perf_counter()
            rewards = run(name, objective, seed, args.samples, args.concurrency, window, args.screened_reward,
                          screened[name])
            seconds[name] += time.perf_counter() - start
            results[name].append([r / optimum for r in rewards])
    print(f"{args.seeds} seeds x {args.samples} samples, concurrency {args.concurrency}; "
          f"{args.landscape} landscape, mean optimum reward {statistics.mean(optima):.4f}; "
          f"flops window {args.flops_window or 'off'}, "
          f"screened told {args.screened_reward}")
    header = " ".join(f"{'@' + str(c):>7}" for c in checkpoints)
    width = max(10, *(len(n) for n in names))
    print(f"{'controller':<{width}} {header}   {'to 99%':>8}  {'s/run':>6}  {'screened':>8}   "
          f"(best reward so far / optimum)")
    for name in names:
        runs = results[name]
        means = [statistics.mean(max(r[:c]) for r in runs) for c in checkpoints]
        hits = [next((i + 1 for i, v in enumerate(r) if v >= 0.99), math.inf) for r in runs]
        median = statistics.median(hits)
        reached = f"{median:.0f}" if median != math.inf else f">{args.samples}"
        cells = " ".join(f"{m:7.4f}" for m in means)
        print(f"{name:<{width}} {cells}   {reached:>8}  {seconds[name] / args.seeds:6.2f}  "
              f"{screened[name]['screened'] / args.seeds:8.0f}")


if __name__ == "__main__":
    main()
