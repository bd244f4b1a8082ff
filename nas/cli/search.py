"""nas-search: the command line of a search (the driver is nas.search.driver)."""
from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Sequence

from controllers import CONTROLLERS
from nas.cli.common import (ArgumentParser, add_proxy_arguments, add_run_arguments, flops_target, given_fields,
                            latency_time, name_list, non_negative_int, positive_float, positive_int, run_command,
                            window_range)
from nas.search.config import FINALISTS_ON_REAL_DATA, SearchConfig
from nas.signals import on_stop
from search_spaces.spec import NOTATION


def _search_parser() -> ArgumentParser:
    d = SearchConfig.defaults()
    p = ArgumentParser(prog="nas-search", description="Search a B0 backbone for a FLOPs or latency budget "
                                                      "(MnasNet-style).",
                       usage="nas-search --target-flops FLOPS [options]\n"
                             "       nas-search --target-latency TIME (--latency-table FILE | --latency-device cpu) "
                             "[options]\n       nas-search --resume --out RUN [options]",
                       epilog=textwrap.fill(NOTATION[0].upper() + NOTATION[1:] + ".", 79),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_target_arguments(p)
    _add_controller_arguments(p, d)
    _add_space_arguments(p)
    add_proxy_arguments(p)
    _add_final_stage_arguments(p, d)
    p.add_argument("--out", help="run directory (default: runs/<YYYYmmdd-HHMMSS>)")
    p.add_argument("--resume", action="store_true", help="continue the search in --out (default: a new search)")
    add_run_arguments(p)
    return p


def _add_target_arguments(p: ArgumentParser) -> None:
    required = p.add_argument_group("the target: one or both (required, except with --resume)")
    required.add_argument("--target-flops", type=flops_target, metavar="FLOPS",
                          help="FLOPs budget T at --resolution, e.g. 400M, 0.4G, 4e8, or b0 (EfficientNet-B0's FLOPs "
                               "at --resolution; also mnasnet_a1, mobilenet_v2) (required unless --target-latency "
                               "is given; with --resume: rescores the recorded trials for a new target)")
    required.add_argument("--target-latency", type=latency_time, metavar="TIME", dest="target_latency_ms",
                          help="latency target, e.g. 20ms: the reward uses the latency the table predicts (with "
                               "--target-flops too, both terms multiply); needs --latency-table or --latency-device "
                               "(default: none)")
    required.add_argument("--latency-table", metavar="FILE",
                          help="the nas-latency-table file of the device you deploy to (default: none)")
    required.add_argument("--latency-device", choices=("cpu",),
                          help="build (once, then reuse from the cache directory) the table of this machine's "
                               "CPU, 1 thread, batch 1, instead of --latency-table (default: not used)")


def _add_controller_arguments(p: ArgumentParser, d: dict) -> None:
    p.add_argument("--controller", choices=sorted(CONTROLLERS),
                   help=f"who proposes (default: {d['controller']}); docs/search.md compares them")
    p.add_argument("--trials", type=positive_int, help=f"candidates to train, counting those a scheduler stops "
                   f"early and those served from the cache, not those screened out (default: {d['trials']})")
    lo, hi = d["window"]
    p.add_argument("--flops-window", type=window_range, metavar="LO,HI", dest="window",
                   help=f"train only candidates whose FLOPs (and predicted latency) are within LO..HI x the "
                        f"target; the rest are recorded as screened (default: {lo:g},{hi:g}; 0,inf: off)")
    p.add_argument("--scheduler", choices=("none", "asha"),
                   help=f"asha: stop weak candidates early at 1/4 and 1/2 of their step budget, with Ray Tune's "
                        f"ASHA (default: {d['scheduler']})")
    p.add_argument("--start-from", type=name_list, metavar="NETS",
                   help="train these networks first, each as its nearest architecture in the space, and tell the "
                        "controller their rewards: comma-separated reference names (efficientnet_b0, mnasnet_a1, "
                        "mobilenet_v2), 'references' for all three, B0 spec files, 'levels' (B0 at each downsampling "
                        "level, sized to the target), or none (default: none)")


def _add_space_arguments(p: ArgumentParser) -> None:
    p.add_argument("--space", metavar="FILE", dest="space_file",
                   help="the search space: mnasnet (MnasNet's, strides fixed: 32x downsampling), downsampling "
                        "(the stem and each reducing block also choose stride 2 or 1: for small images; give "
                        "--resolution as your images' size, the proxy then trains at it), or a space file (JSON, "
                        "any of its fields; a run's space.json is one) (default: downsampling for --resolution "
                        "64 or less, else mnasnet)")
    p.add_argument("--fit-width", action=argparse.BooleanOptionalAction, default=None,
                   help="scale every candidate's widths (stem, blocks, head) by one factor (x0.25 to x2) so that "
                        "its FLOPs land just under --target-flops; the space's filter choices then set the "
                        "blocks' widths relative to each other. --no-fit-width: the space's networks as decoded "
                        "(with --space mnasnet: MnasNet's space as the paper has it) (default: off, or as a "
                        "--space file says; on CIFAR-10 fitted searches found no better network: "
                        "docs/results-real-data.md)")
    p.add_argument("--max-resolution", type=positive_int, metavar="PX",
                   help="with --fit-width: search the input size from --resolution up to this (steps of x1.25 to "
                        "x2, multiples of 8), each candidate fitted to the budget at its size; needs the proxy at "
                        "the networks' size (the downsampling space) (default with --fit-width: the size your "
                        "images are stored at, the median shorter side: nothing searched when it is --resolution "
                        "or less)")


def _add_final_stage_arguments(p: ArgumentParser, d: dict) -> None:
    p.add_argument("--finalists", type=non_negative_int, metavar="K",
                   help="after the search, train the K best candidates by proxy reward and the space's nearest "
                        "EfficientNet-B0 (and, in the downsampling space, B0 with a stride-1 stem narrowed to the "
                        "target) with nas-train's recipe, judge them on the held-out split (paired, with "
                        "a 95%% interval) and make the best best_b0.json; minutes to hours on a CPU; 0: the "
                        f"proxy's winner (default: {FINALISTS_ON_REAL_DATA} on your data, 0 on the built-in "
                        "synthetic data)")
    p.add_argument("--finalist-epochs", type=positive_float, metavar="E",
                   help=f"nas-train epochs of each finalist (default: {d['finalist_epochs']:g})")


def _search_config(args: argparse.Namespace) -> tuple[SearchConfig, SearchConfig | None]:
    """The SearchConfig of this command line, and on ``--resume`` the run's saved one (which the new one is,
    merged with what was given): made by the one function nas.api.search uses too."""
    from nas.search.request import search_request

    given = given_fields(args)
    if args.out:
        given["out"] = args.out
    return search_request(given, resume=args.resume, space=args.space_file, fit_width=args.fit_width,
                          max_resolution=args.max_resolution, latency_device=args.latency_device)


def _search(args: argparse.Namespace) -> int:
    from nas.api import search_from_config, train_finalists
    from nas.search.close_calls import close_call_line

    config, previous = _search_config(args)
    on_stop("nas-search", resume=f"nas-search --resume --out {config.out}")
    result = search_from_config(config, previous, finalists=False)
    starts = result.start_names  # they mark the start points in the top list below
    frame = result.trials
    resume = f"continue with: nas-search --resume --out {config.out}"
    if not result.finished and not (frame["status"] != "screened").any():  # nothing to show: say so, once
        screened = f" ({len(frame)} proposals screened out)" if len(frame) else ""
        print(f"nas-search: interrupted before any candidate finished{screened}; {resume}", file=sys.stderr)
        return 130
    ok = frame[frame["status"] == "ok"].sort_values("reward", ascending=False)
    counts = frame["status"].value_counts()
    kinds = [f"{counts.get(k, 0)} {label}" for k, label in (("ok", "trained"), ("stopped", "stopped early"),
                                                            ("failed", "failed"), ("screened", "screened"))
             if counts.get(k, 0) or k == "ok"]
    print(f"\ntop {min(5, len(ok))} of {len(frame)} candidates ({', '.join(kinds)}):")
    print(f"{'trial':>5}  {'reward':>7}  {'acc':>6}  {'MFLOPs':>7}  {'Mparams':>7}  architecture")
    for _, row in ok.head(5).iterrows():
        start = starts.get(tuple(row["choices"]))
        print(f"{int(row['trial']):>5}  {row['reward']:7.4f}  {row['accuracy']:6.3f}  {row['flops'] / 1e6:7.1f}  "
              f"{row['params'] / 1e6:7.2f}  {row['summary']}" + (f"  (start point: {start})" if start else ""))
    close_call = close_call_line(frame, result.held_out_images, starts,
                                 train_command=f"nas-train {config.out} --trial N --data {config.proxy.data}")
    if close_call:
        print(close_call)
    print(f"outputs in {config.out}: best_b0.json, trials.csv, pareto.png, report.html, search.json, space.json")
    if not result.finished:
        print(f"nas-search: interrupted; finished work is kept; {resume}", file=sys.stderr)
        return 130
    if result.finalists_due:
        print()
        train_finalists(result)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-search``."""
    return run_command("nas-search", _search, _search_parser(), argv)
