"""nas-profile: parameters and FLOPs of a B0 spec, block by block (and latency, measured or predicted)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from nas.cli.common import ArgumentParser, UsageError, positive_int, run_command
from nas.latency import tables as latency
from nas.network.counting import check_size, profile_rows
from search_spaces.spec import MIN_RESOLUTION, load_spec

def _profile_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="nas-profile", description="Parameters and FLOPs of a B0 spec, block by block.")
    parser.add_argument("spec", help="a B0 spec JSON file (nas-b0-spec/1), or an .onnx file (nas-export) to time "
                        "in onnxruntime with --latency")
    parser.add_argument("--resolution", type=positive_int, help="input size (default: the spec's)")
    parser.add_argument("--num-classes", type=positive_int, help="classifier width (default: the spec's)")
    parser.add_argument("--method", choices=("fvcore", "analytic"), default="fvcore",
                        help="fvcore on the built model, or the analytic count from the spec (default: fvcore)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON line {params, flops, resolution[, latency]} instead of the table")
    timing = parser.add_argument_group("latency (measured on this machine)")
    timing.add_argument("--latency", action="store_true",
                        help="also measure inference latency: eval mode, torch.utils.benchmark, median and IQR")
    timing.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to measure (default: cpu)")
    timing.add_argument("--runtime", default="torch", choices=latency.RUNTIMES,
                        help="what runs the network: PyTorch eager, or onnxruntime on the CPU (the network exported "
                             "as nas-export exports it) (default: torch; an .onnx file: onnxruntime)")
    timing.add_argument("--batch-size", type=positive_int, default=1, help="images per call (default: 1)")
    timing.add_argument("--threads", type=positive_int, default=1,
                        help="CPU threads: torch's, or onnxruntime's intra-op threads (default: 1)")
    timing.add_argument("--latency-table", metavar="FILE",
                        help="also print the latency predicted by this table (nas-latency-table; default: none)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _profile_latency(args: argparse.Namespace, spec: object) -> dict[str, object]:
    """The latency figures nas-profile was asked for: measured and/or predicted by a table."""
    out: dict[str, object] = {}
    if args.latency:
        latency.check_measurement(args.device, args.threads, args.batch_size, spec.resolution, args.runtime)
        measured = latency.measure_spec(spec, args.device, args.threads, args.batch_size, runtime=args.runtime)
        out["latency"] = {**measured.to_dict(), "device": latency.describe_device(args.device, args.threads,
                                                                                  args.batch_size, args.runtime)}
    if args.latency_table:
        out["predicted_latency_ms"] = round(latency.load_table(args.latency_table).predict(spec), 4)
    return out


def _profile_onnx(args: argparse.Namespace) -> int:
    """nas-profile model.onnx --latency: onnxruntime's latency on this CPU, measured as PyTorch's is."""
    from nas.export.onnx import measure_onnx

    if not Path(args.spec).is_file():
        raise UsageError(f"{args.spec}: no such file")
    if not args.latency or args.device != "cpu":
        raise UsageError("an .onnx file is timed in onnxruntime on this CPU: give --latency (and no --device cuda)")
    measured, resolution = measure_onnx(args.spec, args.threads, args.batch_size)  # input size checked there
    device = latency.describe_device("cpu", args.threads, args.batch_size, "onnxruntime")
    if args.json:
        print(json.dumps({"resolution": resolution, "runtime": "onnxruntime",
                          "latency": {**measured.to_dict(), "device": device}}))
        return 0
    print(f"{args.spec} at {resolution}x{resolution} in onnxruntime: latency {measured.median_ms:.2f} ms (median; "
          f"IQR {measured.iqr_ms:.2f} ms) on cpu ({device['name']}), {args.threads} thread"
          f"{'s' if args.threads > 1 else ''}, batch {args.batch_size}")
    return 0


def _profile(args: argparse.Namespace) -> int:
    if args.spec.endswith(".onnx"):
        return _profile_onnx(args)
    spec = load_spec(args.spec)
    resolution = args.resolution or spec.resolution
    if resolution < MIN_RESOLUTION:
        raise UsageError(f"--resolution: {resolution} is too small (at least {MIN_RESOLUTION})")
    if args.latency:  # builds the network and runs it (fvcore's count has its own bound, with its way out)
        check_size(spec, resolution, args.num_classes)
    rows = profile_rows(spec, resolution, args.method, args.num_classes)
    params, flops = sum(r.params for r in rows), sum(r.flops for r in rows)
    timing = _profile_latency(args, spec.replace(resolution=resolution, num_classes=args.num_classes or
                                                 spec.num_classes))
    if args.json:
        print(json.dumps({"params": params, "flops": flops, "resolution": resolution, **timing}))
        return 0
    print(f"{spec.name} at {resolution}x{resolution} ({args.method})")
    print(f"blocks: {spec.notation()}  (notation: see nas-search --help)")
    print(f"{'part':<36} {'output':>14} {'params':>12} {'FLOPs':>15}")
    for row in rows:
        shape = f"{row.channels}x{row.size}x{row.size}" if row.size > 1 else f"{row.channels}"
        print(f"{row.name:<36} {shape:>14} {row.params:>12,} {row.flops:>15,}")
    print(f"{'total':<36} {'':>14} {params:>12,} {flops:>15,}")
    print(f"{params / 1e6:.2f}M params, {flops / 1e6:.1f}M FLOPs (multiply-adds, fvcore convention)")
    if "latency" in timing:
        t, d = timing["latency"], timing["latency"]["device"]
        runtime = " in onnxruntime" if d.get("runtime") == "onnxruntime" else ""
        print(f"latency {t['median_ms']:.2f} ms (median; IQR {t['iqr_ms']:.2f} ms){runtime} on {d['kind']} ({d['name']}), "
              f"{d['threads']} thread{'s' if d['threads'] > 1 else ''}, batch {d['batch_size']}")
    if "predicted_latency_ms" in timing:
        print(f"predicted latency {timing['predicted_latency_ms']:.2f} ms (from {args.latency_table})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-profile``."""
    return run_command("nas-profile", _profile, _profile_parser(), argv)
