"""Command-line entry points. Bad input: one line on stderr, exit 2; a failure while running: exit 1."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, NoReturn, Sequence

from nas.spec import SpecError


class UsageError(Exception):
    """Bad arguments or input files (exit status 2)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def run_command(prog: str, main: Callable[[argparse.Namespace], int], parser: ArgumentParser,
                argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run ``main``, turning errors into one stderr line and an exit status."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        return main(args)
    except (UsageError, SpecError) as exc:
        if debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns failures into an exit status
        if debug:
            raise
        print(f"{prog}: failed: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)",
              file=sys.stderr)
        return 1


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


# --------------------------------------------------------------------------------------------- nas-profile
def _profile_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="nas-profile", description="Parameters and FLOPs of a B0 spec, block by block.")
    parser.add_argument("spec", help="a B0 spec JSON file (nas-b0-spec/1)")
    parser.add_argument("--resolution", type=positive_int, help="input size (default: the spec's)")
    parser.add_argument("--num-classes", type=positive_int, help="classifier width (default: the spec's)")
    parser.add_argument("--method", choices=("fvcore", "analytic"), default="fvcore",
                        help="fvcore on the built model (default) or the analytic count from the spec")
    parser.add_argument("--json", action="store_true", help="print one JSON line {params, flops, resolution}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _profile(args: argparse.Namespace) -> int:
    from nas.profile import profile_rows
    from nas.spec import load_spec

    spec = load_spec(args.spec)
    resolution = args.resolution or spec.resolution
    if resolution < 8:
        raise UsageError(f"--resolution: {resolution} is too small (at least 8)")
    rows = profile_rows(spec, resolution, args.method, args.num_classes)
    params, flops = sum(r.params for r in rows), sum(r.flops for r in rows)
    if args.json:
        print(json.dumps({"params": params, "flops": flops, "resolution": resolution}))
        return 0
    print(f"{spec.name} at {resolution}x{resolution} ({args.method})")
    print(f"{'part':<36} {'output':>14} {'params':>12} {'FLOPs':>15}")
    for row in rows:
        shape = f"{row.channels}x{row.size}x{row.size}" if row.size > 1 else f"{row.channels}"
        print(f"{row.name:<36} {shape:>14} {row.params:>12,} {row.flops:>15,}")
    print(f"{'total':<36} {'':>14} {params:>12,} {flops:>15,}")
    print(f"{params / 1e6:.2f}M params, {flops / 1e6:.1f}M FLOPs (multiply-adds, fvcore convention)")
    return 0


def profile_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-profile``."""
    return run_command("nas-profile", _profile, _profile_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(profile_main())
