"""nas-scale: EfficientNet compound scaling of a B0 spec, and the grid search of its coefficients."""
from __future__ import annotations

import argparse
from typing import Sequence

from pathlib import Path

from nas.cli.common import (ArgumentParser, UsageError, add_run_arguments, add_seed_argument, add_training_arguments,
                            given_fields, non_negative_float, positive_float, positive_int,
                            run_command)
from nas.engine.runner import TrialResources
from nas.files import save_spec
from nas.network.counting import profile
from nas.network.scaling import PAPER_COEFFICIENTS, ScalingError, network_stem, one_network_conflict
from nas.training.proxy_settings import ProxySettings
from search_spaces.spec import SpecError, load_spec


def _scale_parser() -> ArgumentParser:
    alpha, beta, gamma = PAPER_COEFFICIENTS
    p = ArgumentParser(prog="nas-scale", description="EfficientNet compound scaling of a B0 spec.")
    p.add_argument("spec", help="the baseline B0 spec JSON (e.g. runs/<name>/best_b0.json)")
    p.add_argument("--preset", help="a row of EfficientNet's published table: b0..b7 (default: none)")
    p.add_argument("--phi", type=non_negative_float,
                   help="compound coefficient φ (with --alpha/--beta/--gamma; default: none)")
    p.add_argument("--alpha", type=positive_float, help=f"depth coefficient α (default {alpha:g}, the paper's)")
    p.add_argument("--beta", type=positive_float, help=f"width coefficient β (default {beta:g})")
    p.add_argument("--gamma", type=positive_float, help=f"resolution coefficient γ (default {gamma:g})")
    p.add_argument("--width", type=positive_float,
                   help="width multiplier (with --depth and --resolution; default: none)")
    p.add_argument("--depth", type=positive_float,
                   help="depth multiplier (with --width and --resolution; default: none)")
    p.add_argument("--resolution", type=positive_int,
                   help="input resolution (with --width and --depth; default: none)")
    p.add_argument("--family", action="store_true",
                   help="write B1..B7 (presets) or φ = 1..7 (coefficients) into one directory")
    p.add_argument("--out", help="output spec file (one network) or directory (--family, --grid-search); default: "
                   "beside the spec, named after its network: <name>-b3.json (one network), <name>-family/ "
                   "(--family), <name>-scaling/ (--grid-search)")
    grid = p.add_argument_group("--grid-search: α, β, γ found on the proxy (the proxy flags as nas-search's)")
    grid.add_argument("--grid-search", action="store_true",
                      help="find α, β, γ on the proxy first (step 1 of the paper), then write the family")
    grid.add_argument("--no-family", action="store_true", help="with --grid-search: only find the coefficients")
    grid.add_argument("--grid-step", type=positive_float, help="grid spacing of α, β, γ (default: 0.1)")
    grid.add_argument("--tolerance", type=non_negative_float,
                      help="allowed |α·β²·γ² - 2| (default: 0.1)")
    add_training_arguments(grid, "grid point", width=ProxySettings.width)
    add_seed_argument(grid, "the proxy data split and training")
    add_run_arguments(grid)
    return p


def _grid_settings(args: argparse.Namespace) -> tuple[ProxySettings, TrialResources]:
    """The grid search's proxy (nas-search's proxy flags and defaults) and where its trials run."""
    given = given_fields(args)
    return ProxySettings.from_fields(given), TrialResources.from_fields(given)


def _is_file_name(name: str) -> bool:
    """Whether ``name`` can name a file beside the spec without reaching outside its folder."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


GRID_DEFAULTS = {"grid_step": 0.1, "tolerance": 0.1}


def _check_mode(args: argparse.Namespace) -> None:
    """One way of scaling, with what it needs and nothing it would ignore: usage errors otherwise."""
    manual = [args.width, args.depth, args.resolution]
    given_coefficients = [name for name in ("alpha", "beta", "gamma") if getattr(args, name) is not None]
    coefficients = [f"--{name}" for name in given_coefficients]
    modes = {"--preset": args.preset is not None, "--phi": args.phi is not None,
             "--width": any(v is not None for v in manual)}
    chosen = [flag for flag, given in modes.items() if given]
    if args.grid_search and (chosen or coefficients):
        raise UsageError(f"--grid-search finds α, β, γ itself and writes φ = 1..7; do not combine it with "
                         f"{(chosen + coefficients)[0]}")
    if args.family and chosen:
        raise UsageError(f"--family writes every member (B1..B7, or φ = 1..7 with --alpha/--beta/--gamma); "
                         f"leave out {chosen[0]}, or drop --family for one network")
    conflict = one_network_conflict(modes["--preset"], modes["--phi"], tuple(manual), given_coefficients,
                                    lambda name: f"--{name}")
    if conflict:
        raise UsageError(conflict)
    if not args.grid_search:
        ignored = ["--no-family"] if args.no_family else []
        ignored += [f"--{name.replace('_', '-')}" for name in (*GRID_DEFAULTS, *_proxy_fields(args))
                    if getattr(args, name, None) is not None]
        if ignored:
            raise UsageError(f"{ignored[0]} is used only with --grid-search")
    if not (chosen or args.family or args.grid_search):
        raise UsageError("say how to scale: --preset bN, --phi P, --width/--depth/--resolution, --family "
                         "or --grid-search")


def _proxy_fields(args: argparse.Namespace) -> list[str]:
    """The proxy and run flags of the grid search given on this command line (--resolution is the manual
    mode's)."""
    return [name for name in given_fields(args) if name not in ("resolution", "out")]


def _grid_searched(args: argparse.Namespace, spec: object, run_dir: Path) -> tuple[float, float, float] | None:
    """Run the grid search; the coefficients found, or None with --no-family (nothing more to write)."""
    from nas.coefficients.grid_search import check_grid, grid_search

    step, tolerance = (getattr(args, name) if getattr(args, name) is not None else default
                       for name, default in GRID_DEFAULTS.items())
    proxy, resources = _grid_settings(args)
    check_grid(spec, proxy, step, tolerance)  # every point within the size bound before data loads
    from nas.api.data import load_proxy_data

    data = load_proxy_data(proxy)
    found = grid_search(spec, run_dir, data, proxy, resources, step, tolerance)
    print(f"best: α={found['alpha']:g} β={found['beta']:g} γ={found['gamma']:g} (α·β²·γ² = {found['product']:.3f}), "
          f"proxy accuracy {found['accuracy']:.3f}; {run_dir}/scaling.csv, coefficients.json")
    return None if args.no_family else (found["alpha"], found["beta"], found["gamma"])


def _scaled(args: argparse.Namespace, spec: object) -> tuple[list, Path | None]:
    """The networks to write, and the directory they go to (None: one network, to --out or beside the spec)."""
    from nas.api import scale, scale_family

    beside = Path(args.spec).parent / network_stem(spec.name)  # every default output: beside the spec
    coefficients = {name: getattr(args, name) for name in ("alpha", "beta", "gamma")}
    if args.grid_search:
        run_dir = Path(args.out or f"{beside}-scaling")
        found = _grid_searched(args, spec, run_dir)
        return (scale_family(spec, *found) if found else []), run_dir
    if args.family:
        return scale_family(spec, **coefficients), Path(args.out or f"{beside}-family")
    return [scale(spec, preset=args.preset, phi=args.phi, width=args.width, depth=args.depth,
                  resolution=args.resolution, **coefficients)], None


def _scale(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    _check_mode(args)
    if not _is_file_name(spec.name):
        raise UsageError(f"{args.spec}: the network's name {spec.name!r} is not a plain file name, and the "
                         f"scaled networks' files are named after it; give the spec a name without '/' or '..'")
    try:
        family, out_dir = _scaled(args, spec)
    except ScalingError as exc:
        raise UsageError(str(exc)) from None
    except SpecError as exc:
        raise UsageError(f"the scaled network is out of bounds: {exc}") from None
    if not family:
        return 0
    print(f"{'network':<28} {'resolution':>10} {'params':>12} {'FLOPs':>16}  file")
    for scaled in family:
        counts = profile(scaled, method="analytic")
        scaled = scaled.replace(metrics={"flops": counts["flops"], "params": counts["params"],
                                         "proxy_accuracy": None, "reward": None})
        path = out_dir / f"{scaled.name}.json" if out_dir else Path(args.out or Path(args.spec).parent /
                                                                        f"{scaled.name}.json")
        save_spec(scaled, path)
        print(f"{scaled.name:<28} {scaled.resolution:>10} {counts['params']:>12,} {counts['flops']:>16,}  {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-scale``."""
    return run_command("nas-scale", _scale, _scale_parser(), argv)
