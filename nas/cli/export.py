"""nas-export: a spec (with a nas-train checkpoint's weights) as ONNX and/or TorchScript, checked against PyTorch."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from nas.cli.common import ArgumentParser, UsageError, positive_int, run_command
from nas.files import writable_directory


def _export_parser() -> ArgumentParser:
    p = ArgumentParser(prog="nas-export", description="Export a network for deployment: ONNX (checked in "
                       "onnxruntime) or TorchScript, eval mode, dynamic batch. Input: float32 NCHW RGB in [0, 1] "
                       "named 'images' (the training normalisation is inside the graph); output: 'logits'.",
                       usage="nas-export SPEC [--checkpoint best.pt] (--onnx FILE | --torchscript FILE) [options]")
    p.add_argument("spec", help="a B0 spec JSON file, or a nas-train run directory (its spec.json and best.pt)")
    p.add_argument("--checkpoint", help="a nas-train checkpoint (best.pt or last.pt); without one the weights are "
                   "random, with a warning (default: the run directory's best.pt, else none)")
    p.add_argument("--onnx", metavar="FILE", help="write ONNX here (default: not written)")
    p.add_argument("--torchscript", metavar="FILE", help="write TorchScript (traced) here (default: not written)")
    p.add_argument("--resolution", type=positive_int,
                   help="input size of the check and the example (default: the checkpoint's, else the spec's)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _export(args: argparse.Namespace) -> int:
    from nas.api import export
    from nas.export.onnx import TOLERANCE, onnx_summary

    if not args.onnx and not args.torchscript:
        raise UsageError("nothing to write: give --onnx FILE and/or --torchscript FILE")
    for flag in ("onnx", "torchscript"):
        target = getattr(args, flag)
        if target and Path(target).is_dir():
            raise UsageError(f"--{flag} {target}: a directory; give the file to write, e.g. {Path(target) / 'model'}"
                             f".{'onnx' if flag == 'onnx' else 'pt'}")
        if target and not Path(target).resolve().parent.is_dir():
            raise UsageError(f"--{flag} {target}: no such directory {Path(target).parent}")
        if target:  # before minutes of exporting, not when the file is written
            writable_directory(f"--{flag}", Path(target).resolve().parent)
    if args.onnx and args.torchscript and Path(args.onnx).resolve() == Path(args.torchscript).resolve():
        raise UsageError(f"--onnx and --torchscript both name {args.onnx}; give two files")
    result = export(args.spec, args.onnx, torchscript=args.torchscript, checkpoint=args.checkpoint,
                    resolution=args.resolution, check=False)
    if result.weights == "random":
        print("warning: no --checkpoint: exporting random weights (useful to measure latency, not to predict)",
              file=sys.stderr)
    spec = result.spec
    print(f"{spec.name}: {result.weights}, {spec.num_classes} classes, checked at {result.resolution}px")
    if args.onnx:
        ops = onnx_summary(args.onnx)
        print(f"{args.onnx}: {ops['nodes']} nodes ({ops['conv_nodes']} Conv, {ops['batch_norm_nodes']} "
              f"BatchNormalization left unfolded); onnxruntime vs PyTorch: max abs difference "
              f"{result.differences['onnx']:.2e}")
    if args.torchscript:
        difference = result.differences["torchscript"]
        print(f"{args.torchscript}: TorchScript vs PyTorch: max abs difference {difference:.2e}")
    if not result.max_difference <= TOLERANCE:
        print(f"nas-export: failed: the export differs from PyTorch by more than {TOLERANCE:g}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-export``."""
    return run_command("nas-export", _export, _export_parser(), argv)
