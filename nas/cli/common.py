"""What every command shares: one-line errors and exit statuses, argument types, the flag groups, the
proxy data loaded before Ray starts. Bad input: one line on stderr, exit 2; a failure while running: exit 1."""
from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import Any, Callable, NoReturn, Sequence

from nas.data.datasets import data_formats
from nas.timings import usable_cpus
from nas.errors import SettingError, UserInputError
from nas.files import writable_directory  # noqa: F401 - the commands' check of an --out
from nas.console import console_output
from nas.latency.tables import parse_latency
from nas.search.config import SearchConfig
from nas.search.reward import parse_flops, parse_flops_target
from nas.signals import TERMINATED, as_command, handlers_kept, stop_on_sigterm
from nas.training.proxy_settings import SEED_LIMIT
from nas.training.recipe import OPTIMIZERS, PROXY_LR
from nas.versions import version_line


class UsageError(Exception):
    """Bad arguments or input files (exit status 2)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit status 2; every command has ``--version``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=version_line(self.prog),
                          help="print the toolkit's version (and torch's, Ray's, onnxruntime's) and exit")

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def run_command(prog: str, main: Callable[[argparse.Namespace], int], parser: ArgumentParser,
                argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run ``main`` with the console output on (``--quiet``: warnings only), turning errors
    into one stderr line and an exit status. The process's signal handlers are put back afterwards."""
    words = sys.argv[1:] if argv is None else list(argv)
    with handlers_kept(), as_command(prog), console_output(quiet="--quiet" in words):
        stop_on_sigterm()
        return _run(prog, main, parser, argv, debug="--debug" in words)


def _run(prog: str, main: Callable[[argparse.Namespace], int], parser: ArgumentParser,
         argv: Sequence[str] | None, debug: bool) -> int:
    try:
        args = parser.parse_args(argv)
        return _status(main(args))
    except (UsageError, UserInputError) as exc:
        if debug:
            raise
        if isinstance(exc, SettingError):  # named as its settings: said as the flags that give them
            exc = exc.renamed(flag_spelling)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        how = "terminated (SIGTERM)" if TERMINATED.is_set() else "interrupted"
        print(f"{prog}: {how}; finished work is kept", file=sys.stderr)
        return _status(130)
    except BrokenPipeError:  # the reader went away (| head): nothing more to say, and nothing at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the one place that turns failures into an exit status
        if debug:
            raise
        if _disk_full(exc):
            print(f"{prog}: failed: no space left on device ({exc}); finished work is kept: free some space, then "
                  f"continue with --resume", file=sys.stderr)
            return 1
        print(f"{prog}: failed: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)",
              file=sys.stderr)
        return 1


# the flags whose spelling is not their setting's flat name with dashes (nas.search.config.FLAT_NAMES)
FLAG_SPELLINGS = {"window": "--flops-window", "target_latency_ms": "--target-latency", "space": "--space"}


def flag_spelling(name: str) -> str:
    """The command line's flag of a flat setting: ``proxy_resolution`` -> ``--proxy-resolution``."""
    return FLAG_SPELLINGS.get(name, "--" + name.replace("_", "-"))


def _disk_full(exc: BaseException | None) -> bool:
    """Whether a failure comes from a full disk (ENOSPC), raised directly or wrapped (a Ray worker's error)."""
    seen = 0
    while exc is not None and seen < 10:
        if getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _status(code: int) -> int:
    """An interrupted command's status: 130 after Ctrl-C, 143 after SIGTERM (128 + the signal, as shells say)."""
    return 143 if code == 130 and TERMINATED.is_set() else code


def positive_int(text: str, least: int = 1) -> int:
    """argparse type: an integer of at least 1 (``least``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least {least}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer of at least 0."""
    return positive_int(text, least=0)


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def non_negative_float(text: str) -> float:
    value = number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be zero or more")
    return value


def positive_float(text: str) -> float:
    value = number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def seed_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and {SEED_LIMIT - 1}")
    return value


def flops_amount(text: str) -> int:
    try:
        return parse_flops(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def flops_target(text: str) -> int | str:
    """argparse type of nas-search's --target-flops: a FLOPs budget or a reference network's name (b0, ...)."""
    try:
        return parse_flops_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def name_list(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated names (empty items dropped)."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def window_range(text: str) -> tuple[float, float]:
    """argparse type: ``LO,HI``; the range itself is checked by SearchConfig."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LO,HI as fractions of the target, "
                                         f"e.g. 0.5,1.5 (0,inf turns the pre-screen off)") from None
    return lo, hi


def latency_time(text: str) -> float:
    try:
        return parse_latency(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_training_arguments(p: ArgumentParser, what: str = "candidate", width: float | None = None) -> None:
    """The flags of the proxy training: budget, batch, optimizer, learning rate, data, resolution, width
    (defaults: SearchConfig's, shared by nas-search, nas-proxy-check and nas-scale --grid-search; ``width``
    another default width, as nas-scale's full-width grid points)."""
    d = SearchConfig.defaults()
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=positive_float,
                        help=f"proxy training epochs per {what}, instead of --steps (default: not used)")
    budget.add_argument("--steps", type=positive_int,
                        help=f"proxy training steps per {what} (default: {d['steps']})")
    p.add_argument("--batch-size", type=positive_int, help=f"proxy batch size (default: {d['batch_size']})")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help=f"proxy training optimizer (default: {d['optimizer']})")
    p.add_argument("--lr", type=positive_float,
                   help="peak learning rate of the proxy training (default: "
                        f"{', '.join(f'{lr:g} for {name}' for name, lr in PROXY_LR.items())})")
    p.add_argument("--data", help=f"proxy data (default: {d['data']}): {data_formats()} (see docs/data.md)")
    p.add_argument("--val-fraction", type=positive_float, metavar="F",
                   help=f"share of the training images held out to rank each {what} on, split with --seed "
                        f"(default: {d['val_fraction']:g})")
    p.add_argument("--proxy-resolution", type=positive_int,
                   help=f"training resolution (default: {d['proxy_resolution']})")
    p.add_argument("--proxy-width", type=positive_float,
                   help=f"train each {what} at this width multiplier, its FLOPs counted at full width, for "
                        f"a narrow proxy (default: {d['proxy_width'] if width is None else width:g})")


def add_scoring_arguments(p: ArgumentParser) -> None:
    """The flags that decide what a candidate is counted at and how it is scored (nas-search, nas-proxy-check)."""
    d = SearchConfig.defaults()
    p.add_argument("--resolution", type=positive_int,
                   help=f"where FLOPs are counted (default: {d['resolution']})")
    p.add_argument("--num-classes", type=positive_int, help="classes of the exported spec (default: the proxy data's)")
    p.add_argument("--reward", choices=("soft", "hard"), help=f"MnasNet reward form (default: {d['reward']})")
    p.add_argument("--w", type=number, help=f"soft reward exponent (default: {d['w']})")


def add_seed_argument(p: ArgumentParser, what: str = "the controller, data split and training") -> None:
    p.add_argument("--seed", type=seed_number, help=f"seed of {what} (default: {SearchConfig.defaults()['seed']})")


def add_proxy_arguments(p: ArgumentParser) -> None:
    """The flags that define the proxy and the reward, shared by nas-search and nas-proxy-check."""
    add_training_arguments(p)
    add_scoring_arguments(p)
    add_seed_argument(p)


def local_cpus() -> int:
    return usable_cpus()


def add_run_arguments(p: ArgumentParser) -> None:
    """Where and how trials run, and the result cache: shared by every command that trains."""
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache", metavar="PATH", help="the result cache across runs (default: "
                       "$NAS_CACHE_DIR/results.sqlite, NAS_CACHE_DIR defaulting to $XDG_CACHE_HOME/nas-toolkit or "
                       "~/.cache/nas-toolkit)")
    cache.add_argument("--no-cache", action="store_true", default=None,
                       help="neither read nor write the result cache: train every candidate")
    p.add_argument("--address", help="join this Ray cluster (auto or host:port) instead of starting a local one "
                   "(default: a local Ray instance on this machine)")
    p.add_argument("--gpus-per-trial", type=non_negative_float,
                   help="GPUs per trial, fractions allowed (default: 1 when the cluster has GPUs, else 0)")
    p.add_argument("--cpus-per-trial", type=positive_float,
                   help="CPUs (torch threads) per trial (default on CPU: 1, or the cluster's CPUs / --concurrency; "
                        "up to 4 per GPU trial)")
    p.add_argument("--concurrency", type=positive_int,
                   help="trials at a time (default on CPU: one per CPU, up to 16, or 1 with --cpus-per-trial; "
                        f"{min(local_cpus(), 16)} on this machine; on GPUs, the cluster's GPUs / --gpus-per-trial)")
    p.add_argument("--debug", action="store_true", default=None, help="show tracebacks and Ray's own output")
    add_quiet_argument(p)


def add_quiet_argument(p: ArgumentParser) -> None:
    """--quiet: warnings and the results only, no progress lines (run_command reads it)."""
    p.add_argument("--quiet", action="store_true", help="print warnings and the results only, no progress lines")


def given_fields(args: argparse.Namespace) -> dict[str, object]:
    """The SearchConfig fields the user gave on the command line (``--epochs`` clears the default steps)."""
    names = set(SearchConfig.defaults()) | {"target_flops"}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if "epochs" in given:  # --epochs and --steps exclude each other
        given["steps"] = None
    return given


def space_option(path: str | None, resolution: int | None = None) -> Any:
    """The space a ``--space`` option names (an MnasNetSpace): a space file or a shipped space (``mnasnet``,
    ``downsampling``), checked (a usage error names what is wrong); None: the default space for networks at
    ``resolution`` (search_spaces.mnasnet.default_space_for)."""
    from nas.search.request import search_space_named

    return search_space_named(path, resolution)
