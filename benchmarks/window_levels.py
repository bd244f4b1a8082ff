"""Which downsampling layouts a FLOPs window leaves: random draws of a space, counted by their stem stride and
total downsampling, against what finished searches trained.

    python -m benchmarks window_levels --resolution 32 --target b0 --window 0.5,1.0 \
        --runs runs/real-data/cifar10-x025/search-b0-x025-finalists

A search in a space that searches the downsampling only ever trains networks inside its FLOPs window (the
pre-screen, and the predictor's pool is filtered by it). This counts, among ``--samples`` uniform draws of the
space, how many of each layout (stem stride 1 or 2; total downsampling 1x..32x) there are and how many fall in
the window (analytic FLOPs at ``--resolution``, ``--classes`` outputs), so one sees which layouts a search at
that budget can reach at all. ``--runs`` adds, per finished search, how many of its trained candidates had
each layout. Writes ``benchmarks/results/window_levels_<resolution>px.csv`` (one row per layout).

``--fit``: every draw's widths fitted to the window's top (at most the target), as a search in a space with
``fit_width`` decodes them (nas.search.candidates); adds each layout's median fitted width factor and the
seconds a fit takes, and writes ``window_levels_<resolution>px_fitted.csv``.
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from nas.network.counting import profile
from nas.search.candidates import CandidateDecoder
from nas.search.reward import parse_flops_target
from nas.search.run import open_run
from search_spaces import REFERENCES
from search_spaces.mnasnet import MnasNetSpace, default_space_for, space_named
from search_spaces.spec import load_spec

RESULTS = Path(__file__).parent / "results"


def layout(space: MnasNetSpace, choices: list[int]) -> tuple[int, int]:
    """(stem stride, total downsampling) of one architecture."""
    stem, strides = space.strides(choices)
    return stem, stem * int(np.prod(strides))


def target_flops(text: str, resolution: int, classes: int) -> float:
    """``--target``: a FLOPs figure, or a reference network's name (``b0``) for its FLOPs at the resolution."""
    target = parse_flops_target(text)
    if isinstance(target, str):
        spec = load_spec(REFERENCES / f"{target}.json")
        return float(profile(spec, resolution, method="analytic", num_classes=classes)["flops"])
    return float(target)


def draw(space: MnasNetSpace, resolution: int, classes: int, low: float, high: float, samples: int,
         seed: int, fit: float | None = None) -> tuple[Counter, Counter, dict]:
    """Drawn and in-window counts per layout over ``samples`` uniform draws, and each layout's fitted width
    factors (``fit``: the FLOPs the widths are fitted to; None: as decoded)."""
    rng = np.random.default_rng(seed)
    decoder = CandidateDecoder(space, resolution, classes, fit)
    drawn, inside, widths = Counter(), Counter(), {}
    for _ in range(samples):
        choices = space.sample(rng)
        key = layout(space, choices)
        drawn[key] += 1
        spec = decoder(choices)
        widths.setdefault(key, []).append(spec.provenance.get("width_fit", 1.0))
        if low <= profile(spec, method="analytic")["flops"] <= high:
            inside[key] += 1
    return drawn, inside, widths


def trained_layouts(run: str) -> Counter:
    """Per layout, how many candidates a finished search trained (screened ones left out)."""
    opened = open_run(run, "window_levels")
    counts = Counter()
    for _, row in opened.trials().iterrows():
        if row["status"] != "screened":
            choices = json.loads(row["choices"]) if isinstance(row["choices"], str) else list(row["choices"])
            counts[layout(opened.space, choices)] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default=None, help="a shipped space's name (default: the default at --resolution)")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--target", default="b0", help="FLOPs (400M) or a reference network's name (b0)")
    parser.add_argument("--window", default="0.5,1.0", help="low,high as fractions of the target")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", nargs="*", default=[], help="finished nas-search runs to count")
    parser.add_argument("--fit", action="store_true", help="fit every draw's widths to the budget")
    args = parser.parse_args()
    space = space_named(args.space) if args.space else default_space_for(args.resolution)
    target = target_flops(args.target, args.resolution, args.classes)
    low, high = (float(x) * target for x in args.window.split(","))
    started = time.perf_counter()
    fit = min(target, high) if args.fit else None
    drawn, inside, widths = draw(space, args.resolution, args.classes, low, high, args.samples, args.seed, fit)
    seconds = time.perf_counter() - started
    print(f"{args.samples} draws in {seconds:.0f}s ({seconds / args.samples * 1e3:.2f} ms each, "
          f"{'fitted' if fit else 'as decoded'}); window {low / 1e6:.2f}M-{high / 1e6:.2f}M "
          f"at {args.resolution} px; {sum(inside.values())} inside")
    rows = [{"stem_stride": stem, "downsampling": down, "drawn": drawn[(stem, down)],
             "in_window": inside[(stem, down)],
             "share_of_window": inside[(stem, down)] / max(1, sum(inside.values())),
             **({"median_width_fit": float(np.median(widths[(stem, down)])),
                 "ms_per_draw": round(seconds / args.samples * 1e3, 3)} if fit else {})}
            for stem, down in sorted(drawn)]
    frame = pd.DataFrame(rows)
    for run in args.runs:
        counts = trained_layouts(run)
        frame[f"trained:{Path(run).name}"] = [counts[(r["stem_stride"], r["downsampling"])] for r in rows]
    print(frame.to_string(index=False))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"window_levels_{args.resolution}px{'_fitted' if fit else ''}.csv"
    frame.to_csv(path, index=False)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
