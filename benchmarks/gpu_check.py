"""One short check for a CUDA machine, run in one call; prints a table per part. Needs torch (timm if present);
no Ray, no fvcore: trials are the trainer itself, in processes, as Ray's fractional GPUs would place them.

    PYTHONPATH=. python -m benchmarks gpu_check [--parts a,b,c,d] [--steps 300] [--per-process 3]
    PYTHONPATH=. python -m benchmarks gpu_check --device cpu --quick     # the script's own dry run, on CPU

(a) our EfficientNet-B0 against timm's at 224 px, batch 128, bf16 autocast + channels_last: training img/s
    and the ratio; (b) one default proxy candidate (32 px, --steps steps, batch 64): seconds, img/s and GPU
    utilisation; (c) 1, 2, 4 and 8 processes training --per-process candidates each at once on the same GPU:
    candidates per hour and peak memory per process; (d) torch.compile(mode="reduce-overhead") (CUDA graphs)
    against eager for the proxy candidate, the compile time counted against it.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

from nas.data.datasets import ImageSplits, load_data, split
from nas.network.builder import build_model
from nas.network.counting import profile
from search_spaces.spec import load_spec
from nas.data.synthetic import generate
from nas.training.recipe import proxy_recipe
from nas.training.core import init_for_short_training
from nas.training.proxy import train_model
from search_spaces.mnasnet import default_space


class Utilisation:
    """GPU utilisation and memory sampled by nvidia-smi every 0.5 s while a part runs (n/a without it)."""

    def __init__(self, device: str) -> None:
        self.samples: list[tuple[float, float]] = []
        self.enabled = device == "cuda" and shutil.which("nvidia-smi") is not None
        self._stop = threading.Event()

    def __enter__(self) -> "Utilisation":
        if self.enabled:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                  "--format=csv,noheader,nounits", "-i", "0"], capture_output=True, text=True)
            try:
                util, mem = (float(v) for v in out.stdout.strip().split(","))
                self.samples.append((util, mem))
            except ValueError:
                pass
            self._stop.wait(0.5)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def describe(self) -> str:
        if not self.samples:
            return "util n/a"
        util = np.mean([u for u, _ in self.samples])
        mem = max(m for _, m in self.samples) / 1024
        return f"util {util:4.0f}%  GPU memory used {mem:5.1f} GiB"


def candidate_near(target_flops: float, seed: int = 0):
    """A sampled architecture within 10% of ``target_flops`` at 224 px (the default search's kind)."""
    space, rng = default_space(), np.random.default_rng(seed)
    while True:
        spec = space.decode(space.sample(rng))
        if abs(profile(spec, method="analytic")["flops"] / target_flops - 1) < 0.1:
            return spec


def ours(spec, classes: int):
    def make():
        model = build_model(spec, classes)
        init_for_short_training(model)
        return model
    return make


def throughput(make_model, data: ImageSplits, steps: int, batch_size: int, device: str, compile_mode=None) -> dict:
    """Training img/s from the difference of a short and a long run (start-up and compile cancel out)."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    short_steps = max(2, steps // 6)
    train_model(make_model(), data, proxy_recipe(steps=2, batch_size=batch_size), device,
                compile_mode=compile_mode)  # warm-up: allocator, cuDNN autotuning, compile caches
    short = train_model(make_model(), data, proxy_recipe(steps=short_steps, batch_size=batch_size), device,
                        compile_mode=compile_mode)
    full = train_model(make_model(), data, proxy_recipe(steps=steps, batch_size=batch_size), device,
                       compile_mode=compile_mode)
    rate = (steps - short_steps) * batch_size / max(full["train_seconds"] - short["train_seconds"], 1e-9)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    return {"ips": rate, "seconds": full["train_seconds"], "peak_gib": peak, "status": full["status"],
            "loss": (short["final_loss"], full["final_loss"]), "accuracy": full["accuracy"],
            "compiled": full.get("compiled")}


def part_a(args, device: str) -> None:
    try:
        import timm
    except ImportError:
        timm = None
    resolution, batch = (224, 128) if not args.quick else (64, 8)
    x, y = generate(4 * batch, resolution, 10, seed=0)
    data = ImageSplits("synthetic", *split(x, y, 0.25, 0), num_classes=10)
    steps = 60 if not args.quick else 12
    b0 = load_spec(ROOT / "search_spaces" / "references" / "efficientnet_b0.json")
    rows = [("ours efficientnet-b0", throughput(ours(b0, 10), data, steps, batch, device))]
    if timm is not None:
        rows.append(("timm efficientnet_b0", throughput(
            lambda: timm.create_model("efficientnet_b0", num_classes=10), data, steps, batch, device)))
    print(f"\n(a) training at {resolution} px, batch {batch}, {steps} steps, "
          f"{'bf16 autocast + ' if device == 'cuda' else ''}channels_last")
    for name, r in rows:
        print(f"  {name:<22} {r['ips']:9.0f} img/s  peak {r['peak_gib']:5.2f} GiB  loss {r['loss'][0]:.3f} -> "
              f"{r['loss'][1]:.3f}  {r['status']}")
    if len(rows) == 2:
        print(f"  ratio ours / timm: {rows[0][1]['ips'] / rows[1][1]['ips']:.3f} (goal >= 1.0)")


def proxy_data(args) -> ImageSplits:
    return load_data("synthetic" if not args.quick else "synthetic:classes=3,images=200", 32, 0.2, 0)


def part_b(args, device: str) -> None:
    data, spec = proxy_data(args), candidate_near(400e6)
    steps = args.steps if not args.quick else 4
    with Utilisation(device) as util:
        started = time.perf_counter()
        from nas.training.proxy import train_candidate

        result = train_candidate(spec, data, proxy_recipe(steps=steps, batch_size=64), device=device)
        seconds = time.perf_counter() - started
    print(f"\n(b) one default proxy candidate ({steps} steps, batch 64, 32 px): {seconds:.1f}s "
          f"({result['images_per_second']:.0f} img/s in training), acc {result['accuracy']:.3f}; "
          f"{util.describe()}")


def _worker(args_tuple) -> dict:
    """One process as one Ray worker would be: the data once, then ``count`` candidates in a row."""
    count, steps, quick, device, seed = args_tuple
    torch.set_num_threads(1)
    data = load_data("synthetic" if not quick else "synthetic:classes=3,images=200", 32, 0.2, 0)
    started = time.perf_counter()
    from nas.training.proxy import train_candidate

    space, rng = default_space(), np.random.default_rng(seed)
    for _ in range(count):
        train_candidate(space.decode(space.sample(rng)), data, proxy_recipe(steps=steps, batch_size=64),
                        device=device, seed=seed)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    return {"seconds": time.perf_counter() - started, "peak_gib": peak}


def part_c(args, device: str) -> None:
    steps = args.steps if not args.quick else 4
    count = args.per_process if not args.quick else 1
    print(f"\n(c) candidates at once on one {'GPU' if device == 'cuda' else 'CPU'}, {count} per process, "
          f"{steps} steps each (data loaded once per process)")
    context = mp.get_context("spawn")
    for processes in (1, 2, 4, 8) if not args.quick else (1, 2):
        with Utilisation(device) as util, context.Pool(processes) as pool:
            started = time.perf_counter()
            results = pool.map(_worker, [(count, steps, args.quick, device, i) for i in range(processes)])
            wall = time.perf_counter() - started
        per_hour = processes * count / wall * 3600
        peak = max(r["peak_gib"] for r in results)
        print(f"  {processes} at once: {per_hour:7.0f} candidates/hour  wall {wall:6.1f}s  "
              f"peak {peak:5.2f} GiB per process  {util.describe()}")


def part_d(args, device: str) -> None:
    data, spec = proxy_data(args), candidate_near(400e6)
    steps = args.steps if not args.quick else 4
    print(f"\n(d) the proxy candidate, eager against torch.compile(mode='reduce-overhead'), {steps} steps")
    for mode in (None, "reduce-overhead"):
        started = time.perf_counter()
        result = train_model(ours(spec, data.num_classes)(), data, proxy_recipe(steps=steps, batch_size=64), device,
                             compile_mode=mode)
        seconds = time.perf_counter() - started
        label = "eager" if mode is None else f"compiled ({result.get('compiled')})"
        print(f"  {label:<40} {seconds:7.1f}s per candidate incl. compile  "
              f"{result['images_per_second']:7.0f} img/s  acc {result['accuracy']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="a,b,c,d")
    parser.add_argument("--steps", type=int, default=300, help="proxy steps per candidate (default: 300)")
    parser.add_argument("--per-process", type=int, default=3, help="candidates per process in (c)")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the script itself")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device (use --device cpu --quick to check the script)")
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
        print(f"{torch.cuda.get_device_name()} | torch {torch.__version__}")
    for part in args.parts.split(","):
        {"a": part_a, "b": part_b, "c": part_c, "d": part_d}[part](args, args.device)


if __name__ == "__main__":
    main()
