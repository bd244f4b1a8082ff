"""Resident memory of the trial worker over a long search: does the reused Ray worker grow per trial?

    python -m benchmarks worker_memory [--trials 50] [--steps 30]
    python -m benchmarks worker_memory --in-process [--trials 20] [--steps 30]

Runs a search through ``nas.api`` (its own process, a fresh cache, the default synthetic proxy data) and samples, every
half second, the resident memory (RSS) of Ray's worker processes (``ray::...``) and of the driver. Prints,
every 5 trials, the trial worker's floor (the least RSS sampled while that many trials were done: what it
keeps between candidates) and peak (what the candidate in training needs on top), and the growth of the
floor per trial over the second half (a least-squares slope), which should be about 0 for a 500-trial
search to hold steady.

``--in-process`` finds the cause without Ray: the same sequence of candidates (fvcore count, then training)
in fresh Python processes, side by side: as the trial did before ``nas.engine.measure.release_memory`` (plain), with
it after every candidate, and (without it) counting FLOPs only or training only, to tell which part grows.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import nas.api
from benchmarks import processes

ROOT = Path(__file__).resolve().parents[1]


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command line, RSS in MiB), from /proc (Linux)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = float(fields.get("VmRSS", "0 kB").split()[0]) / 1024
        out[int(entry.name)] = (int(fields["PPid"]), cmdline, rss)
    return out


def worker_rss(driver: int) -> tuple[float, float]:
    """(largest RSS of a Ray worker under the driver's process tree, the driver's RSS), in MiB."""
    table = _processes()
    below, frontier = set(), {driver}
    while frontier:
        frontier = {pid for pid, (parent, _, _) in table.items() if parent in frontier} - below
        below |= frontier
    workers = [table[pid][2] for pid in below if table[pid][1].startswith("ray::")]
    return (max(workers) if workers else 0.0), table.get(driver, (0, "", 0.0))[2]


def rss_per_candidate(variant: str, trials: int, steps: int) -> list[float]:
    """RSS in MiB of this process before and after each of ``trials`` random candidates, evaluated as
    ``variant`` says (run in a fresh process: :func:`in_process`)."""
    import torch

    from nas.data.datasets import load_data
    from nas.engine.measure import release_memory
    from nas.network.counting import profile
    from nas.training.proxy import train_candidate
    from nas.training.recipe import proxy_recipe
    from search_spaces.mnasnet import MnasNetSpace

    torch.set_num_threads(2)
    rss = lambda: int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024  # noqa: E731
    recipe = proxy_recipe(steps=steps, epochs=None, batch_size=64, optimizer="adamw", lr=None)
    data = load_data("synthetic", 32, 0.2, 0)
    space, rng = MnasNetSpace(), np.random.default_rng(0)
    samples = [rss()]
    for trial in range(trials):
        spec = space.decode(space.sample(rng), resolution=224, num_classes=data.num_classes)
        if variant != "train only":
            profile(spec, method="fvcore")
        if variant != "fvcore only":
            train_candidate(spec, data, recipe, device="cpu", seed=trial)
        if variant == "release_memory":
            release_memory()
        samples.append(rss())
    return samples


VARIANTS = ("plain", "release_memory", "fvcore only", "train only")


def in_process(trials: int, steps: int) -> None:
    """RSS after each candidate, per variant, each in a fresh process, one after another."""
    print(f"RSS in MiB of one process evaluating {trials} random candidates ({steps} training steps each)")
    marks = [0] + [n for n in (1, 5, 10, 20, 30, 50) if n <= trials]
    print(f"{'variant':>16} " + " ".join(f"{'after ' + str(n):>9}" for n in marks) + f" {'MiB/trial':>10}")
    for variant in VARIANTS:
        samples = processes.value(rss_per_candidate, variant, trials, steps)
        half = list(range(len(samples) // 2, len(samples)))
        slope = np.polyfit(half, [samples[n] for n in half], 1)[0]
        print(f"{variant:>16} " + " ".join(f"{samples[n]:>9.0f}" for n in marks) + f" {slope:>+10.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--in-process", action="store_true", help="the cause, without Ray (see above)")
    args = parser.parse_args()
    if args.in_process:
        in_process(args.trials, args.steps)
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        process = processes.start(nas.api.search, "400M", trials=args.trials, steps=args.steps,
                                  controller="random", flops_window=(0, float("inf")), out=out,
                                  cache=str(Path(tmp) / "cache" / "results.sqlite"))
        driver = process.pid
        csv = out / "trials.csv"
        # RSS samples of the trial worker while ``rows`` trials were finished: their floor is what the worker
        # keeps between candidates, their peak what the candidate in training needs on top
        samples: dict[int, list[float]] = {}
        driver_rss: dict[int, float] = {}
        print(f"{args.trials} trials of {args.steps} steps (random controller, default synthetic data)")
        print(f"{'trials done':>11} {'worker floor MiB':>17} {'worker peak MiB':>16} {'driver MiB':>11}", flush=True)
        while process.is_alive():
            rows = max(0, len(csv.read_text().splitlines()) - 1) if csv.exists() else 0
            worker, own = worker_rss(driver)
            if worker:
                if rows not in samples and rows - 1 in samples and (rows - 1) % 5 == 0:
                    _print_row(rows - 1, samples[rows - 1], driver_rss[rows - 1])
                samples.setdefault(rows, []).append(worker)
                driver_rss[rows] = own
            time.sleep(0.5)
        processes.finished(process, "nas.api.search")
    last = max(samples)
    _print_row(last, samples[last], driver_rss[last])
    done = sorted(n for n in samples if n >= last // 2)
    if len(done) >= 2:
        slope = np.polyfit(done, [min(samples[n]) for n in done], 1)[0]
        peak = max(max(v) for v in samples.values())
        print(f"worker floor growth over the second half: {slope:+.2f} MiB per trial; peak {peak:.0f} MiB")


def _print_row(trials: int, values: list[float], driver: float) -> None:
    print(f"{trials:>11} {min(values):>17.0f} {max(values):>16.0f} {driver:>11.0f}", flush=True)


if __name__ == "__main__":
    main()
