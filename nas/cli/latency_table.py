"""nas-latency-table: measure every layer the space can produce on this machine, into a latency table."""
from __future__ import annotations

import argparse
import os
import time
from typing import Sequence

from nas.cli.common import (ArgumentParser, UsageError, positive_float, positive_int, run_command, space_option,
                            writable_directory)
from nas.console import say
from nas.latency import tables as latency
from nas.network.counting import check_space_size
from nas.search.progress import human_duration
from search_spaces.spec import MIN_RESOLUTION

MAX_MIN_RUN_TIME = 5.0


def _latency_table_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="nas-latency-table",
                            description="Measure, once, the latency of every layer the search space can produce on "
                                        "this machine, into a table that nas-search --latency-table reads. Run it "
                                        "on the device you deploy to and copy the file back.")
    parser.add_argument("--out", required=True, help="the table file to write (JSON)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to measure (default: cpu)")
    parser.add_argument("--runtime", default="torch", choices=latency.RUNTIMES,
                        help="what runs each layer: PyTorch eager, or onnxruntime on the CPU, which runs the ONNX file "
                             "nas-export writes (default: torch)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="CPU threads: torch's, or onnxruntime's intra-op threads (default: 1)")
    parser.add_argument("--batch-size", type=positive_int, default=1, help="images per call (default: 1)")
    parser.add_argument("--resolution", type=positive_int, default=224,
                        help="the input size the networks will run at (default: 224)")
    parser.add_argument("--space", metavar="FILE", dest="space_file",
                        help="the search space the table covers: a space file, e.g. a run's space.json (default: "
                             "the default space of nas-search at --resolution)")
    parser.add_argument("--num-classes", type=positive_int, default=1000, help="classifier width (default: 1000)")
    parser.add_argument("--min-run-time", type=positive_float, default=0.05,
                        help=f"seconds of timed runs per layer, after warm-up (default: 0.05; at most "
                             f"{MAX_MIN_RUN_TIME:g}: the table has about a thousand layers)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _latency_table(args: argparse.Namespace) -> int:
    if args.min_run_time > MAX_MIN_RUN_TIME:  # a thousand layers: hours of measuring per second asked
        raise UsageError(f"--min-run-time {args.min_run_time:g}: at most {MAX_MIN_RUN_TIME:g} seconds per layer (the "
                         f"table measures about a thousand layers)")
    if args.resolution < MIN_RESOLUTION:
        raise UsageError(f"--resolution: {args.resolution} is too small (at least {MIN_RESOLUTION})")
    latency.check_measurement(args.device, args.threads, args.batch_size, args.resolution, args.runtime)
    if os.path.isdir(args.out):  # checked before minutes of measuring, not when the table is written
        raise UsageError(f"--out {args.out}: is a directory; give the table's file name, e.g. {args.out}/table.json")
    writable_directory("--out", os.path.dirname(os.path.abspath(args.out)))
    space = space_option(args.space_file, args.resolution)
    check_space_size(space, args.resolution, args.num_classes)
    device = latency.describe_device(args.device, args.threads, args.batch_size, args.runtime)
    runtime = f" in onnxruntime {device['onnxruntime']}" if args.runtime == "onnxruntime" else ""
    say(f"measuring every layer configuration of the space at {args.resolution}px on {device['kind']} "
        f"({device['name']}){runtime}, {args.threads} thread(s), batch {args.batch_size}, then calibrating on "
        f"whole networks")
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            say(f"  {done}/{total} measured ({human_duration(time.perf_counter() - started)})")

    table = latency.build_table(space, args.resolution, args.num_classes, args.device, args.threads,
                                args.batch_size, args.min_run_time, progress, runtime=args.runtime)
    table.save(args.out)
    say(f"wrote {args.out}: {len(table.entries)} entries, calibration scale {table.scale:.3f}, in "
        f"{human_duration(table.seconds)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-latency-table``."""
    return run_command("nas-latency-table", _latency_table, _latency_table_parser(), argv)
