"""nas-proxy-check: the command line of the proxy check (the driver is nas.proxy_check.driver)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from nas.cli.common import (ArgumentParser, add_proxy_arguments, add_run_arguments, flops_amount, given_fields,
                            positive_int, run_command, writable_directory)
from nas.search.config import SearchConfig


def _proxy_check_parser() -> ArgumentParser:
    p = ArgumentParser(prog="nas-proxy-check",
                       description="How faithfully does the proxy task rank architectures? Trains models with the "
                                   "proxy budget (as nas-search would) and a longer reference budget, and reports "
                                   "the rank agreement.")
    p.add_argument("--target-flops", type=flops_amount, required=True, metavar="FLOPS",
                   help="the search's FLOPs target, e.g. 400M (required)")
    add_proxy_arguments(p)
    p.add_argument("--models", type=positive_int, default=16,
                   help="architectures sampled across 0.5x..1.5x the target (default: 16), plus the 3 references")
    p.add_argument("--reference-steps", type=positive_int, help="steps of the reference budget (default: 10x the proxy's)")
    p.add_argument("--reference-resolution", type=positive_int,
                   help="training resolution of the reference (default: the proxy's)")
    p.add_argument("--repeats", type=positive_int, default=2,
                   help="proxy trainings per model with different seeds: 2 gives the seed-to-seed ceiling (default: 2)")
    p.add_argument("--from", dest="from_run", metavar="RUN",
                   help="a nas-search run: check its best models plus random ones (default: sampled models)")
    p.add_argument("--no-references", action="store_true", help="leave out the shipped reference networks")
    p.add_argument("--reference-table", metavar="FILE",
                   help="networks already trained for real (benchmarks/ground_truth.py writes such a CSV): the "
                        "proxy trains each of them and is scored against their test accuracy, with no reference "
                        "training (--models, --from and the reference flags do not apply) (default: none, a "
                        "reference training per model)")
    p.add_argument("--out", help="output directory (default: runs/proxy-check-<YYYYmmdd-HHMMSS>)")
    add_run_arguments(p)
    return p


def _proxy_check(args: argparse.Namespace) -> int:
    from nas.proxy_check.driver import ProxyCheckConfig, run_proxy_check

    given = given_fields(args)
    given["out"] = args.out or str(Path("runs") / f"proxy-check-{time.strftime('%Y%m%d-%H%M%S')}")
    writable_directory("--out", given["out"])
    check = ProxyCheckConfig(search=SearchConfig.of(**given), models=args.models, reference_steps=args.reference_steps,
                             reference_resolution=args.reference_resolution, repeats=args.repeats,
                             from_run=args.from_run, references=not args.no_references,
                             reference_table=args.reference_table)
    for warning in check.search.warnings():
        print(warning, file=sys.stderr)
    from nas.api.data import load_proxy_data

    data = load_proxy_data(check.search.proxy)
    check.validate(len(data.x_train))  # before Ray starts: bad flags cost nothing
    figures = run_proxy_check(check, data, warn=lambda message: print(message, file=sys.stderr))
    print()
    for what in ("accuracy", "reward"):
        if what in figures:
            f = figures[what]
            tau, rho = f["kendall_tau_b"], f["spearman_rho"]
            print(f"{what:<9} proxy vs reference: Kendall tau-b {_fmt(tau)}, Spearman rho {_fmt(rho)}, "
                  f"top-{f['top_k']} overlap {f['top_k_overlap']:.2f}")
    if "per_seed_kendall_tau_b" in figures:
        taus = ", ".join("undefined" if t is None else f"{t:.2f}" for t in figures["per_seed_kendall_tau_b"])
        print(f"accuracy  each proxy seed vs reference: Kendall tau-b {taus}")
    if "averaged_proxy" in figures:
        averaged = figures["averaged_proxy"]
        print(f"accuracy  proxy averaged over {averaged['seeds']} seeds vs reference: Kendall tau-b "
              f"{_fmt(averaged['kendall_tau_b'])}, Spearman rho {_fmt(averaged['spearman_rho'])}")
    if "seed_to_seed" in figures:
        print(f"seed to seed (proxy vs proxy, accuracy): Kendall tau-b {_fmt(figures['seed_to_seed']['kendall_tau_b'])}")
    if "held_out_accuracy" in figures:
        print(f"accuracy  proxy vs the table's held-out accuracy: Kendall tau-b "
              f"{_fmt(figures['held_out_accuracy']['kendall_tau_b'])}")
    if "train_loss" in figures:
        print(f"train loss (lower ranks higher) vs reference: Kendall tau-b "
              f"{_fmt(figures['train_loss']['kendall_tau_b'])}")
    if "flops_alone" in figures:
        print(f"FLOPs alone (no training) vs reference: Kendall tau-b {_fmt(figures['flops_alone']['kendall_tau_b'])}")
    if "in_window" in figures:
        window = figures["in_window"]
        scores = [f"accuracy {_fmt(window['accuracy']['kendall_tau_b'])}"]
        if "train_loss" in window:
            scores.append(f"train loss {_fmt(window['train_loss']['kendall_tau_b'])}")
        scores.append(f"FLOPs alone {_fmt(window['flops_alone']['kendall_tau_b'])}")
        low, high = (value / 1e6 for value in window["flops"])
        print(f"inside the search's FLOPs window ({window['models']} models of {low:.1f}-{high:.1f}M FLOPs), "
              f"Kendall tau-b vs reference: {', '.join(scores)}")
    if "seconds" in figures:
        s = figures["seconds"]
        reference = (f", reference {s['reference_mean']:.1f}s (ratio {s['cost_ratio']:.1f})"
                     if "reference_mean" in s else "")
        print(f"cost: proxy {s['proxy_mean']:.1f}s per model{reference}; {figures['left_out']} of "
              f"{figures['models']} models left out (failed)")
    print(figures["verdict"])
    print(f"outputs in {check.search.out}: proxy_check.csv, proxy_check.json, proxy_check.png")
    return 0


def _fmt(stat: dict) -> str:
    value, (low, high) = stat["value"], stat["interval90"]
    if value is None:
        return "undefined"
    return f"{value:.2f} [{low:.2f}, {high:.2f}]" if low is not None else f"{value:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-proxy-check``."""
    return run_command("nas-proxy-check", _proxy_check, _proxy_check_parser(), argv)
