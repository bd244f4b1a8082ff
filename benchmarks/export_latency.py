"""ONNX export of EfficientNet-B0: the difference from PyTorch, and onnxruntime's latency against PyTorch's on
this CPU, measured side by side in interleaved rounds.

    python -m benchmarks export_latency [--resolution 224] [--threads 1] [--batch-size 1] [--rounds 5]

Random weights (latency does not depend on them); the exported graph is nas-export's (normalisation inside).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from nas.export.model import exportable_model
from nas.export.onnx import check_onnx, export_onnx, measure_onnx, onnx_summary
from nas.latency.tables import measure
from search_spaces import REFERENCES
from search_spaces.spec import load_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import warnings

    import onnxruntime

    warnings.simplefilter("ignore")
    spec = load_spec(Path(REFERENCES) / "efficientnet_b0.json").replace(resolution=args.resolution)
    model, spec, _ = exportable_model(spec, None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b0.onnx"
        export_onnx(model, args.resolution, path)
        error = check_onnx(path, model, args.resolution)
        ops = onnx_summary(path)
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(measure(model, (3, args.resolution, args.resolution), "cpu", args.threads,
                                args.batch_size, min_run_time=1.0).median_ms)
            theirs.append(measure_onnx(path, args.threads, args.batch_size, min_run_time=1.0)[0].median_ms)
    print(f"EfficientNet-B0 at {args.resolution}px, batch {args.batch_size}, {args.threads} thread(s); torch "
          f"{torch.__version__}, onnxruntime {onnxruntime.__version__}")
    print(f"ONNX graph: {ops['nodes']} nodes, {ops['conv_nodes']} Conv, {ops['batch_norm_nodes']} BatchNormalization"
          f"; max abs difference from PyTorch {error:.2e}")
    print(f"PyTorch eager : {statistics.median(ours):8.2f} ms (median of {args.rounds} rounds: "
          f"{', '.join(f'{v:.2f}' for v in ours)})")
    print(f"onnxruntime   : {statistics.median(theirs):8.2f} ms ({', '.join(f'{v:.2f}' for v in theirs)})")
    print(f"speed-up      : {statistics.median(ours) / statistics.median(theirs):8.2f}x (PyTorch / onnxruntime)")


if __name__ == "__main__":
    main()
