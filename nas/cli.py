"""Command-line entry points. Bad input: one line on stderr, exit 2; a failure while running: exit 1."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Callable, NoReturn, Sequence

from nas.errors import UserInputError


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
    except (UsageError, UserInputError) as exc:
        if debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished work is kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): nothing more to say, and nothing at exit either
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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
    parser.add_argument("--json", action="store_true",
                        help="print one JSON line {params, flops, resolution[, latency]} instead of the table")
    latency = parser.add_argument_group("latency (measured on this machine)")
    latency.add_argument("--latency", action="store_true",
                         help="also measure inference latency: eval mode, torch.utils.benchmark, median and IQR")
    latency.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to measure (default: cpu)")
    latency.add_argument("--batch-size", type=positive_int, default=1, help="images per call (default: 1)")
    latency.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default: 1)")
    latency.add_argument("--latency-table", metavar="FILE",
                         help="also print the latency predicted by this table (nas-latency-table; default: none)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _profile_latency(args: argparse.Namespace, spec: object) -> dict[str, object]:
    """The latency figures nas-profile was asked for: measured and/or predicted by a table."""
    from nas import latency

    out: dict[str, object] = {}
    if args.latency:
        latency.check_measurement(args.device, args.threads, args.batch_size, spec.resolution)
        measured = latency.measure_spec(spec, args.device, args.threads, args.batch_size)
        out["latency"] = {**measured.to_dict(), "device": latency.describe_device(args.device, args.threads,
                                                                                  args.batch_size)}
    if args.latency_table:
        out["predicted_latency_ms"] = round(latency.load_table(args.latency_table).predict(spec), 4)
    return out


def _profile(args: argparse.Namespace) -> int:
    from nas.profile import profile_rows
    from nas.spec import MIN_RESOLUTION, load_spec

    spec = load_spec(args.spec)
    resolution = args.resolution or spec.resolution
    if resolution < MIN_RESOLUTION:
        raise UsageError(f"--resolution: {resolution} is too small (at least {MIN_RESOLUTION})")
    rows = profile_rows(spec, resolution, args.method, args.num_classes)
    params, flops = sum(r.params for r in rows), sum(r.flops for r in rows)
    timing = _profile_latency(args, spec.replace(resolution=resolution, num_classes=args.num_classes or
                                                 spec.num_classes))
    if args.json:
        print(json.dumps({"params": params, "flops": flops, "resolution": resolution, **timing}))
        return 0
    print(f"{spec.name} at {resolution}x{resolution} ({args.method})")
    print(f"blocks: {' '.join(block.notation() for block in spec.blocks)}  (notation: see nas-search --help)")
    print(f"{'part':<36} {'output':>14} {'params':>12} {'FLOPs':>15}")
    for row in rows:
        shape = f"{row.channels}x{row.size}x{row.size}" if row.size > 1 else f"{row.channels}"
        print(f"{row.name:<36} {shape:>14} {row.params:>12,} {row.flops:>15,}")
    print(f"{'total':<36} {'':>14} {params:>12,} {flops:>15,}")
    print(f"{params / 1e6:.2f}M params, {flops / 1e6:.1f}M FLOPs (multiply-adds, fvcore convention)")
    if "latency" in timing:
        t, d = timing["latency"], timing["latency"]["device"]
        print(f"latency {t['median_ms']:.2f} ms (median; IQR {t['iqr_ms']:.2f} ms) on {d['kind']} ({d['name']}), "
              f"{d['threads']} thread{'s' if d['threads'] > 1 else ''}, batch {d['batch_size']}")
    if "predicted_latency_ms" in timing:
        print(f"predicted latency {timing['predicted_latency_ms']:.2f} ms (from {args.latency_table})")
    return 0


def profile_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-profile``."""
    return run_command("nas-profile", _profile, _profile_parser(), argv)


# --------------------------------------------------------------------------------------------- nas-latency-table
def _latency_table_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="nas-latency-table",
                            description="Measure, once, the latency of every layer the search space can produce on "
                                        "this machine, into a table that nas-search --latency-table reads. Run it "
                                        "on the device you deploy to and copy the file back.")
    parser.add_argument("--out", required=True, help="the table file to write (JSON)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to measure (default: cpu)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--batch-size", type=positive_int, default=1, help="images per call (default: 1)")
    parser.add_argument("--resolution", type=positive_int, default=224,
                        help="the input size the networks will run at (default: 224)")
    parser.add_argument("--num-classes", type=positive_int, default=1000, help="classifier width (default: 1000)")
    parser.add_argument("--min-run-time", type=_positive_float, default=0.05,
                        help="seconds of timed runs per layer, after warm-up (default: 0.05)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _latency_table(args: argparse.Namespace) -> int:
    from nas import latency
    from nas.console import say
    from nas.progress import human_duration
    from nas.spec import MIN_RESOLUTION
    from search_spaces.mnasnet import default_space

    if args.resolution < MIN_RESOLUTION:
        raise UsageError(f"--resolution: {args.resolution} is too small (at least {MIN_RESOLUTION})")
    latency.check_measurement(args.device, args.threads, args.batch_size, args.resolution)
    _writable_directory("--out", os.path.dirname(os.path.abspath(args.out)))
    device = latency.describe_device(args.device, args.threads, args.batch_size)
    say(f"measuring every layer configuration of the space at {args.resolution}px on {device['kind']} "
        f"({device['name']}), {args.threads} thread(s), batch {args.batch_size}, then calibrating on whole networks")
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            say(f"  {done}/{total} measured ({human_duration(time.perf_counter() - started)})")

    table = latency.build_table(default_space(), args.resolution, args.num_classes, args.device, args.threads,
                                args.batch_size, args.min_run_time, progress)
    table.save(args.out)
    say(f"wrote {args.out}: {len(table.entries)} entries, calibration scale {table.scale:.3f}, in "
        f"{human_duration(table.seconds)}")
    return 0


def latency_table_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-latency-table``."""
    return run_command("nas-latency-table", _latency_table, _latency_table_parser(), argv)


# --------------------------------------------------------------------------------------------- nas-search
def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _non_negative_float(text: str) -> float:
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be zero or more")
    return value


def _positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _seed(text: str) -> int:
    from nas.config import SEED_LIMIT

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and {SEED_LIMIT - 1}")
    return value


def _flops(text: str) -> int:
    from nas.reward import parse_flops

    try:
        return parse_flops(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _flops_window(text: str) -> tuple[float, float]:
    """argparse type: ``LO,HI``; the range itself is checked by SearchConfig."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LO,HI as fractions of the target, "
                                         f"e.g. 0.5,1.5 (0,inf turns the pre-screen off)") from None
    return lo, hi


def _latency(text: str) -> float:
    from nas.latency import parse_latency

    try:
        return parse_latency(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_proxy_arguments(p: ArgumentParser) -> None:
    """The flags that define the proxy and the reward, shared by nas-search and nas-proxy-check."""
    from nas.config import DEFAULT_LR, OPTIMIZERS, SearchConfig

    d = SearchConfig.defaults()
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=_positive_float,
                        help="proxy training epochs per candidate, instead of --steps (default: not used)")
    budget.add_argument("--steps", type=positive_int,
                        help=f"proxy training steps per candidate (default: {d['steps']})")
    p.add_argument("--batch-size", type=positive_int, help=f"proxy batch size (default: {d['batch_size']})")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help=f"proxy training optimizer (default: {d['optimizer']})")
    p.add_argument("--lr", type=_positive_float,
                   help="peak learning rate of the proxy training (default: "
                        f"{', '.join(f'{lr:g} for {name}' for name, lr in DEFAULT_LR.items())})")
    p.add_argument("--data", help=f"proxy data (default: {d['data']}): synthetic, npz:PATH, cifar10:DIR, "
                   "cifar100:DIR, folder:DIR (see README)")
    p.add_argument("--proxy-resolution", type=positive_int,
                   help=f"training resolution (default: {d['proxy_resolution']})")
    p.add_argument("--resolution", type=positive_int,
                   help=f"where FLOPs are counted (default: {d['resolution']})")
    p.add_argument("--num-classes", type=positive_int, help="classes of the exported spec (default: the proxy data's)")
    p.add_argument("--reward", choices=("soft", "hard"), help=f"MnasNet reward form (default: {d['reward']})")
    p.add_argument("--w", type=_float, help=f"soft reward exponent (default: {d['w']})")
    p.add_argument("--seed", type=_seed, help=f"seed of the controller, data split and training (default: {d['seed']})")


def _local_cpus() -> int:
    import os

    return os.cpu_count() or 1


def _add_run_arguments(p: ArgumentParser) -> None:
    """Where and how trials run, and the result cache: shared by every command that trains."""
    p.add_argument("--cache", metavar="PATH", help="the result cache across runs (default: "
                   "$NAS_CACHE_DIR/results.sqlite, NAS_CACHE_DIR defaulting to ~/.cache/nas-toolkit)")
    p.add_argument("--no-cache", action="store_true", default=None,
                   help="neither read nor write the result cache: train every candidate")
    p.add_argument("--address", help="join this Ray cluster (auto or host:port) instead of starting a local one "
                   "(default: a local Ray instance on this machine)")
    p.add_argument("--gpus-per-trial", type=_non_negative_float,
                   help="GPUs per trial, fractions allowed (default: 1 when the cluster has GPUs, else 0)")
    p.add_argument("--cpus-per-trial", type=_positive_float,
                   help="CPUs per trial (default: the cluster's CPUs / --concurrency on CPU, up to 4 per GPU trial; "
                        f"{_local_cpus()} on this machine)")
    p.add_argument("--concurrency", type=positive_int,
                   help="trials at a time (default: 1 on CPU; on GPUs, the cluster's GPUs / --gpus-per-trial)")
    p.add_argument("--debug", action="store_true", default=None, help="show tracebacks and Ray's own output")


def _writable_directory(flag: str, path: str) -> None:
    """A usage error, naming the flag, when ``path`` cannot be created or written (a file, a read-only place)."""
    from pathlib import Path

    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        probe = Path(path) / ".nas-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None


def _given(args: argparse.Namespace) -> dict[str, object]:
    """The SearchConfig fields the user gave on the command line (``--epochs`` clears the default steps)."""
    from nas.config import SearchConfig

    names = set(SearchConfig.defaults()) | {"target_flops"}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if "epochs" in given:  # --epochs and --steps exclude each other
        given["steps"] = None
    return given


def _latency_table_for(args: argparse.Namespace, resolution: int) -> str | None:
    """The table a search predicts latency with: --latency-table, checked; or, with --latency-device cpu, this
    machine's table (1 thread, batch 1) from the cache directory, built there the first time."""
    from nas import latency
    from nas.console import say
    from nas.data import cache_root
    from search_spaces.mnasnet import default_space

    if args.latency_table and args.latency_device:
        raise UsageError("--latency-table and --latency-device: give one of them")
    space = default_space()
    if args.latency_device:
        device = latency.describe_device(args.latency_device, 1, 1)
        key = latency.space_fingerprint(space) + json.dumps(device, sort_keys=True) + str(resolution)
        path = cache_root() / "latency" / f"{args.latency_device}-{resolution}px-{_short_hash(key)}.json"
        if not path.is_file():
            say(f"building the latency table of this machine ({device['name']}, 1 thread, batch 1) at "
                f"{resolution}px, once: a few minutes; kept as {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
            latency.build_table(space, resolution, 1000, args.latency_device, 1, 1).save(path)
        return str(path)
    if not args.latency_table:
        return None
    table = latency.load_table(args.latency_table, space)
    if table.resolution != resolution:
        raise UsageError(f"--latency-table {args.latency_table}: built for {table.resolution}px, the search counts "
                         f"at {resolution}px (--resolution)")
    return os.path.abspath(args.latency_table)


def _short_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _search_parser() -> ArgumentParser:
    from controllers import CONTROLLERS
    from nas.config import SearchConfig

    import textwrap

    from nas.spec import NOTATION

    d = SearchConfig.defaults()
    p = ArgumentParser(prog="nas-search", description="Search a B0 backbone for a FLOPs or latency budget "
                                                      "(MnasNet-style).",
                       usage="nas-search --target-flops FLOPS [options]\n"
                             "       nas-search --target-latency TIME (--latency-table FILE | --latency-device cpu) "
                             "[options]\n       nas-search --resume --out RUN [options]",
                       epilog=textwrap.fill(NOTATION[0].upper() + NOTATION[1:] + ".", 79),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    required = p.add_argument_group("the target: one or both (required, except with --resume)")
    required.add_argument("--target-flops", type=_flops, metavar="FLOPS",
                          help="FLOPs budget T at --resolution, e.g. 400M, 0.4G, 4e8 (required unless --target-latency "
                               "is given; with --resume: rescores the recorded trials for a new target)")
    required.add_argument("--target-latency", type=_latency, metavar="TIME", dest="target_latency_ms",
                          help="latency target, e.g. 20ms: the reward uses the latency the table predicts (with "
                               "--target-flops too, both terms multiply); needs --latency-table or --latency-device "
                               "(default: none)")
    required.add_argument("--latency-table", metavar="FILE",
                          help="the nas-latency-table file of the device you deploy to (default: none)")
    required.add_argument("--latency-device", choices=("cpu",),
                          help="build (once, then reuse from the cache directory) the table of this machine's "
                               "CPU, 1 thread, batch 1, instead of --latency-table (default: not used)")
    p.add_argument("--controller", choices=sorted(CONTROLLERS), help=f"who proposes (default: {d['controller']})")
    p.add_argument("--trials", type=positive_int, help=f"candidates to train, counting those a scheduler stops "
                   f"early and those served from the cache, not those screened out (default: {d['trials']})")
    lo, hi = d["flops_window"]
    p.add_argument("--flops-window", type=_flops_window, metavar="LO,HI",
                   help=f"train only candidates whose FLOPs (and predicted latency) are within LO..HI x the "
                        f"target; the rest are recorded as screened (default: {lo:g},{hi:g}; 0,inf: off)")
    p.add_argument("--scheduler", choices=("none", "asha"),
                   help=f"asha: stop weak candidates early at 1/4 and 1/2 of their step budget, with Ray Tune's "
                        f"ASHA (default: {d['scheduler']})")
    _add_proxy_arguments(p)
    p.add_argument("--out", help="run directory (default: runs/<YYYYmmdd-HHMMSS>)")
    p.add_argument("--resume", action="store_true", help="continue the search in --out (default: a new search)")
    _add_run_arguments(p)
    return p


def _search_config(args: argparse.Namespace) -> tuple[object, bool]:
    """The SearchConfig of this command line: a new one, or the run's own merged with what was given."""
    import time
    from pathlib import Path

    from nas.config import SearchConfig
    from nas.search import saved_config

    given = _given(args)
    if args.resume:
        if not args.out:
            raise UsageError("--resume needs --out, the run directory to continue")
        saved = saved_config(Path(args.out))
        table = _latency_table_for(args, saved.resolution)
        if table:
            given["latency_table"] = table
        config = saved.resumed(given)
        _writable_directory("--out", args.out)
        return config, True
    if args.target_flops is None and args.target_latency_ms is None:
        raise UsageError("a target is required: --target-flops 400M, --target-latency 20ms, or both")
    table = _latency_table_for(args, args.resolution or SearchConfig.defaults()["resolution"])
    if table:
        given["latency_table"] = table
    out = args.out or str(Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    if (Path(out) / "trials.csv").exists():
        raise UsageError(f"{out} already holds a search; use --resume to continue it or another --out")
    _writable_directory("--out", out)
    given["out"] = out
    return SearchConfig(**{"target_flops": None, **given}), False


def _proxy_data(text: str, resolution: int, val_fraction: float, seed: int, batch_size: int) -> object:
    """The proxy data of a command, loaded before Ray starts: a data error is a usage error (one line, exit 2);
    what makes the data a poor judge of architectures is said as warnings on stderr."""
    from nas.data import DataError, data_warnings, load_data

    try:
        data = load_data(text, resolution, val_fraction, seed)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    for warning in data_warnings(data, batch_size):
        print(warning, file=sys.stderr)
    return data


def _search(args: argparse.Namespace) -> int:
    from nas.search import run_search

    config, resume = _search_config(args)
    for warning in config.warnings():
        print(warning, file=sys.stderr)
    # the data before Ray starts: a missing directory is a usage error
    data = _proxy_data(config.data, config.proxy_resolution, config.val_fraction, config.seed, config.batch_size)
    outcome = run_search(config, data, resume=resume)
    frame = outcome.trials
    ok = frame[frame["status"] == "ok"].sort_values("reward", ascending=False)
    counts = frame["status"].value_counts()
    kinds = [f"{counts.get(k, 0)} {label}" for k, label in (("ok", "trained"), ("stopped", "stopped early"),
                                                            ("failed", "failed"), ("screened", "screened"))
             if counts.get(k, 0) or k == "ok"]
    print(f"\ntop {min(5, len(ok))} of {len(frame)} candidates ({', '.join(kinds)}):")
    print(f"{'trial':>5}  {'reward':>7}  {'acc':>6}  {'MFLOPs':>7}  {'Mparams':>7}  architecture")
    for _, row in ok.head(5).iterrows():
        print(f"{int(row['trial']):>5}  {row['reward']:7.4f}  {row['accuracy']:6.3f}  {row['flops'] / 1e6:7.1f}  "
              f"{row['params'] / 1e6:7.2f}  {row['summary']}")
    print(f"outputs in {config.out}: best_b0.json, trials.csv, pareto.png, search.json")
    if not outcome.finished:
        print(f"nas-search: interrupted; finished work is kept; continue with: nas-search --resume --out "
              f"{config.out}", file=sys.stderr)
        return 130
    return 0


def search_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-search``."""
    return run_command("nas-search", _search, _search_parser(), argv)


# --------------------------------------------------------------------------------------------- nas-proxy-check
def _proxy_check_parser() -> ArgumentParser:
    p = ArgumentParser(prog="nas-proxy-check",
                       description="How faithfully does the proxy task rank architectures? Trains models with the "
                                   "proxy budget (as nas-search would) and a longer reference budget, and reports "
                                   "the rank agreement.")
    p.add_argument("--target-flops", type=_flops, required=True, metavar="FLOPS",
                   help="the search's FLOPs target, e.g. 400M (required)")
    _add_proxy_arguments(p)
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
    p.add_argument("--out", help="output directory (default: runs/proxy-check-<YYYYmmdd-HHMMSS>)")
    _add_run_arguments(p)
    return p


def _proxy_check(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from nas.config import SearchConfig
    from nas.proxy_check import ProxyCheckConfig, run_proxy_check

    given = _given(args)
    given["out"] = args.out or str(Path("runs") / f"proxy-check-{time.strftime('%Y%m%d-%H%M%S')}")
    _writable_directory("--out", given["out"])
    check = ProxyCheckConfig(search=SearchConfig(**given), models=args.models, reference_steps=args.reference_steps,
                             reference_resolution=args.reference_resolution, repeats=args.repeats,
                             from_run=args.from_run, references=not args.no_references)
    for warning in check.search.warnings():
        print(warning, file=sys.stderr)
    data = _proxy_data(check.search.data, check.search.proxy_resolution, check.search.val_fraction,
                       check.search.seed, check.search.batch_size)
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
    if "seconds" in figures:
        s = figures["seconds"]
        print(f"cost: proxy {s['proxy_mean']:.1f}s, reference {s['reference_mean']:.1f}s per model "
              f"(ratio {s['cost_ratio']:.1f}); {figures['left_out']} of {figures['models']} models left out (failed)")
    print(figures["verdict"])
    print(f"outputs in {check.search.out}: proxy_check.csv, proxy_check.json, proxy_check.png")
    return 0


def _fmt(stat: dict) -> str:
    value, (low, high) = stat["value"], stat["interval90"]
    if value is None:
        return "undefined"
    return f"{value:.2f} [{low:.2f}, {high:.2f}]" if low is not None else f"{value:.2f}"


def proxy_check_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-proxy-check``."""
    return run_command("nas-proxy-check", _proxy_check, _proxy_check_parser(), argv)


# --------------------------------------------------------------------------------------------- nas-scale
def _scale_parser() -> ArgumentParser:
    p = ArgumentParser(prog="nas-scale", description="EfficientNet compound scaling of a B0 spec.")
    p.add_argument("spec", help="the baseline B0 spec JSON (e.g. runs/<name>/best_b0.json)")
    p.add_argument("--preset", help="a row of EfficientNet's published table: b0..b7 (default: none)")
    p.add_argument("--phi", type=_non_negative_float,
                   help="compound coefficient φ (with --alpha/--beta/--gamma; default: none)")
    p.add_argument("--alpha", type=_positive_float, help="depth coefficient α (default 1.2, the paper's)")
    p.add_argument("--beta", type=_positive_float, help="width coefficient β (default 1.1)")
    p.add_argument("--gamma", type=_positive_float, help="resolution coefficient γ (default 1.15)")
    p.add_argument("--width", type=_positive_float,
                   help="width multiplier (with --depth and --resolution; default: none)")
    p.add_argument("--depth", type=_positive_float,
                   help="depth multiplier (with --width and --resolution; default: none)")
    p.add_argument("--resolution", type=positive_int,
                   help="input resolution (with --width and --depth; default: none)")
    p.add_argument("--family", action="store_true",
                   help="write B1..B7 (presets) or φ = 1..7 (coefficients) into one directory")
    p.add_argument("--grid-search", action="store_true",
                   help="find α, β, γ on the proxy first (step 1 of the paper), then write the family")
    p.add_argument("--no-family", action="store_true", help="with --grid-search: only find the coefficients")
    p.add_argument("--data", default="synthetic",
                   help="proxy data for --grid-search, as nas-search --data (default: synthetic)")
    p.add_argument("--proxy-resolution", type=positive_int, default=32,
                   help="base proxy resolution of --grid-search (default: 32)")
    p.add_argument("--steps", type=positive_int, default=300,
                   help="proxy training steps per grid point (default: 300)")
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="proxy batch size of --grid-search (default: 64)")
    p.add_argument("--grid-step", type=_positive_float, default=0.1, help="grid spacing of α, β, γ (default: 0.1)")
    p.add_argument("--tolerance", type=_non_negative_float, default=0.1,
                   help="allowed |α·β²·γ² - 2| (default: 0.1)")
    p.add_argument("--address", default=None,
                   help="join this Ray cluster for --grid-search (default: a local Ray instance)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the proxy data split and training (default: 0)")
    p.add_argument("--out", help="output spec file (one network) or directory (--family, --grid-search); default: "
                   "beside the spec, named after its network: <name>-b3.json (one network), <name>-family/ "
                   "(--family), <name>-scaling/ (--grid-search)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _scale(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nas.profile import profile
    from nas.scaling import (PAPER_COEFFICIENTS, PRESETS, ScalingError, network_stem, preset, scale_compound,
                             scale_spec)
    from nas.spec import SpecError, load_spec

    spec = load_spec(args.spec)
    manual = [args.width, args.depth, args.resolution]
    coefficients = [args.alpha, args.beta, args.gamma]
    modes = [args.preset is not None, args.phi is not None, any(v is not None for v in manual)]
    if args.grid_search and (modes[0] or modes[2]):
        raise UsageError("--grid-search finds α, β, γ itself; do not combine it with --preset or --width")
    if sum(modes) > 1:
        raise UsageError("choose one of --preset, --phi, or --width/--depth/--resolution")
    if modes[2] and any(v is None for v in manual):
        raise UsageError("--width, --depth and --resolution go together")
    if not (any(modes) or args.family or args.grid_search):
        raise UsageError("say how to scale: --preset bN, --phi P, --width/--depth/--resolution, --family "
                         "or --grid-search")
    base = Path(args.spec)
    beside = base.parent / network_stem(spec.name)  # every default output: beside the spec, after its network
    alpha, beta, gamma = (c if c is not None else d for c, d in zip(coefficients, PAPER_COEFFICIENTS))
    try:
        if args.grid_search:
            from nas.scaling import coefficient_grid
            from nas.scaling_search import grid_search

            coefficient_grid(args.grid_step, args.tolerance)  # a grid too fine or empty fails before data loads
            data = _proxy_data(args.data, args.proxy_resolution, 0.2, args.seed, args.batch_size)
            run_dir = Path(args.out or f"{beside}-scaling")
            from nas.train import TrainBudget

            found = grid_search(spec, run_dir, data, TrainBudget(steps=args.steps, batch_size=args.batch_size),
                                args.grid_step, args.tolerance, args.address, args.seed, debug=bool(args.debug))
            alpha, beta, gamma = found["alpha"], found["beta"], found["gamma"]
            print(f"best: α={alpha:g} β={beta:g} γ={gamma:g} (α·β²·γ² = {found['product']:.3f}), "
                  f"proxy accuracy {found['accuracy']:.3f}; {run_dir}/scaling.csv, coefficients.json")
            if args.no_family:
                return 0
            family = [scale_compound(spec, alpha, beta, gamma, phi) for phi in range(1, 8)]
            out_dir = run_dir
        elif args.family and args.phi is None and not any(v is not None for v in coefficients):
            family = [preset(spec, name) for name in PRESETS if name != "b0"]
            out_dir = Path(args.out or f"{beside}-family")
        elif args.family:
            family = [scale_compound(spec, alpha, beta, gamma, phi) for phi in range(1, 8)]
            out_dir = Path(args.out or f"{beside}-family")
        else:
            if args.preset is not None:
                scaled = preset(spec, args.preset.lower())
            elif args.phi is not None:
                scaled = scale_compound(spec, alpha, beta, gamma, args.phi)
            else:
                scaled = scale_spec(spec, args.width, args.depth, args.resolution,
                                    name=f"{spec.name}-w{args.width:g}-d{args.depth:g}-r{args.resolution}")
            family, out_dir = [scaled], None
    except ScalingError as exc:
        raise UsageError(str(exc)) from None
    except SpecError as exc:
        raise UsageError(f"the scaled network is out of bounds: {exc}") from None

    print(f"{'network':<28} {'resolution':>10} {'params':>12} {'FLOPs':>16}  file")
    for scaled in family:
        counts = profile(scaled, method="analytic")
        scaled = scaled.replace(metrics={"flops": counts["flops"], "params": counts["params"],
                                         "proxy_accuracy": None, "reward": None})
        if out_dir is None:
            path = Path(args.out or base.parent / f"{scaled.name}.json")
        else:
            path = out_dir / f"{scaled.name}.json"
        scaled.save(path)
        print(f"{scaled.name:<28} {scaled.resolution:>10} {counts['params']:>12,} {counts['flops']:>16,}  {path}")
    return 0


def scale_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-scale``."""
    return run_command("nas-scale", _scale, _scale_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(profile_main())
