"""Zero-cost scores against a table of real trainings: do they rank networks as real training does?

    python -m benchmarks zero_cost --table benchmarks/results/ground_truth_cifar10.csv \
        --data cifar10:../shared/data/cifar10 --resolution 32

For each network of a reference table (``benchmarks/ground_truth.py``), scores computed at initialisation on
one batch of the data's training images, with no training: **synflow** (Tanaka et al. 2020, as a NAS score in
Abdelfattah et al. 2021: the sum over parameters of |θ · ∂R/∂θ| where R is the output's sum for an all-ones
input through the network with every weight made positive, in float64) and **jacob_cov** (Mellor et al. 2021:
how uncorrelated the input Jacobians of the batch's images are, ``-Σ log(λ + k) + 1/(λ + k)`` over the
eigenvalues of their correlation matrix), beside FLOPs and params alone. Each is ranked against the table's
test accuracy (the mean over its seeds) with Kendall's tau-b and its 90% bootstrap interval, three
initialisations each (the scores' own noise). Writes ``benchmarks/results/zero_cost_<table>.csv`` (one row
per network) and prints the taus.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nas.data.datasets import load_data
from nas.network.builder import build_model
from nas.network.counting import profile
from nas.proxy_check.rank_stats import bootstrap_interval, kendall_tau_b
from nas.proxy_check.table import read_reference_table
from nas.training.proxy import proxy_splits


def synflow(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
    """Synaptic flow at initialisation: Σ |θ · ∂R/∂θ| with |θ| weights and an all-ones input (float64)."""
    model = model.double().eval()
    signs = {}
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            signs[name] = torch.sign(tensor)
            tensor.abs_()
    model.zero_grad()
    output = model(torch.ones((1, *shape), dtype=torch.float64))
    torch.sum(output).backward()
    return sum(float((p.detach() * p.grad).abs().sum()) for p in model.parameters() if p.grad is not None)


def jacob_cov(model: torch.nn.Module, images: torch.Tensor, k: float = 1e-5) -> float:
    """Mellor et al.'s score: the input Jacobians' correlation eigenvalues, ``-Σ log(λ + k) + 1/(λ + k)``."""
    model = model.float().train()
    images = images.clone().requires_grad_(True)
    model.zero_grad()
    model(images).sum().backward()
    jacobians = images.grad.reshape(len(images), -1).double()
    correlation = torch.corrcoef(jacobians)
    eigenvalues = torch.linalg.eigvalsh(torch.nan_to_num(correlation))
    return float(-torch.sum(torch.log(eigenvalues.clamp_min(0) + k) + 1.0 / (eigenvalues.clamp_min(0) + k)))


def scores(spec, num_classes: int, images: torch.Tensor, seed: int) -> dict[str, float]:
    torch.manual_seed(seed)
    started = time.perf_counter()
    row = {"jacob_cov": jacob_cov(build_model(spec, num_classes=num_classes), images)}
    torch.manual_seed(seed)
    row["synflow_log10"] = float(np.log10(max(synflow(build_model(spec, num_classes=num_classes),
                                                      tuple(images.shape[1:])), 1e-300)))
    row["seconds"] = time.perf_counter() - started
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", default="benchmarks/results/ground_truth_cifar10.csv")
    parser.add_argument("--data", default="cifar10:../shared/data/cifar10")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--inits", type=int, default=3, help="initialisations per network")
    parser.add_argument("--out", help="default: benchmarks/results/zero_cost_<table name>.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_data(args.data, args.resolution)
    train, _ = proxy_splits(data, torch.device("cpu"))
    images = train.to_input(train.x[torch.arange(args.batch)]).contiguous()  # normalised, not augmented
    rows = []
    for model in read_reference_table(args.table):
        spec = model.spec.replace(resolution=args.resolution)
        counts = profile(spec.replace(num_classes=data.num_classes), method="analytic")
        for init in range(args.inits):
            rows.append({"name": model.name, "init": init, "test_accuracy": model.test_accuracy,
                         "flops": counts["flops"], "params": counts["params"],
                         **scores(spec, data.num_classes, images, seed=init)})
        print(f"{model.name:<28} test {model.test_accuracy:.4f}  jacob_cov {rows[-1]['jacob_cov']:10.1f}  "
              f"log10 synflow {rows[-1]['synflow_log10']:7.2f}", flush=True)
    frame = pd.DataFrame(rows)
    out = Path(args.out or Path(__file__).parent / "results" / f"zero_cost_{Path(args.table).stem}.csv")
    frame.to_csv(out, index=False)
    target = frame[frame["init"] == 0]["test_accuracy"].to_numpy(float)
    print(f"\n{len(target)} networks; Kendall tau-b against test accuracy [90% interval]:")
    for score in ("flops", "params", "synflow_log10", "jacob_cov"):
        taus = [kendall_tau_b(frame[frame["init"] == i][score].to_numpy(float), target) for i in range(args.inits)]
        first = frame[frame["init"] == 0][score].to_numpy(float)
        low, high = bootstrap_interval(kendall_tau_b, first, target)
        print(f"  {score:<14} {taus[0]:+.2f} [{low:+.2f}, {high:+.2f}]  (by initialisation: "
              f"{', '.join(f'{t:+.2f}' for t in taus)})")
    print(f"mean cost per network and initialisation: {frame['seconds'].mean():.2f} s; {out}")


if __name__ == "__main__":
    main()
