"""How a proxy trial holds up when something else runs on the machine.

    python -m benchmarks trial_load                     # every condition below, about 10 minutes on 2 cores
    python -m benchmarks trial_load --steps 100 --conditions alone,busy

A *trial* here is what a search trial does: the proxy training of EfficientNet-B0 (the default budget's batch,
32 px) in a fresh Python process, timed over ``--steps`` steps after a warm-up. Each condition runs it with
1 or 2 torch threads and one of three OpenMP settings (libgomp's default spin-wait; ``OMP_WAIT_POLICY=PASSIVE``;
``GOMP_SPINCOUNT`` lowered), either alone or beside a neighbour:

- ``alone``: nothing else runs;
- ``busy``: beside one CPU-bound Python loop (a user's other job);
- ``trainer``: beside a second trainer with the same settings (a second search, or a search at concurrency 2);
- ``pair``: two trials side by side, both measured (``--concurrency 2`` at 1 thread against 1 at 2 threads).

A condition's figure is the measured trial's images per second (the sum of both for ``pair``) and its ratio to
the same settings alone. A trial that has not finished in ``--limit`` seconds is stopped and reported as slower
than that. The conditions run one after another: nothing else may run while this does.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.neighbours import BUSY_LOOP

ROOT = Path(__file__).resolve().parent.parent
WAIT_POLICIES = {
    "spin": {},  # libgomp's default: a waiting thread spins about 300,000 times before it sleeps
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin1k": {"GOMP_SPINCOUNT": "1000"},
}
NEIGHBOURS = ("alone", "busy", "trainer", "pair")


def trial(threads: int, steps: int, warmup: int) -> None:
    """The measured work, in this process: print one JSON line with images per second."""
    import torch

    from nas.data.datasets import load_data
    from nas.training.recipe import proxy_recipe
    from nas.training.proxy import train_candidate
    from search_spaces import REFERENCES
    from search_spaces.spec import load_spec

    torch.set_num_threads(threads)
    data = load_data("synthetic:images=3000", resolution=32)
    spec = load_spec(Path(REFERENCES) / "efficientnet_b0.json")
    if warmup:
        train_candidate(spec, data, proxy_recipe(steps=warmup))
    start = time.perf_counter()
    result = train_candidate(spec, data, proxy_recipe(steps=steps))
    seconds = time.perf_counter() - start
    print(json.dumps({"images_per_second": result["images_per_second"], "seconds": seconds,
                      "status": result["status"]}), flush=True)


def _trial_command(threads: int, steps: int, warmup: int) -> list[str]:
    return [sys.executable, __file__, "--trial", "--threads", str(threads), "--steps", str(steps),
            "--warmup", str(warmup)]


def _env(policy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(WAIT_POLICIES[policy])
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _read(process: subprocess.Popen, deadline: float) -> float | None:
    """The images per second a trial process printed, or None when it ran past ``deadline``."""
    try:
        out, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise SystemExit(f"a trial process failed (exit {process.returncode}):\n{out[-2000:]}")
    return float(json.loads(lines[-1])["images_per_second"])


def run_condition(neighbour: str, threads: int, policy: str, steps: int, warmup: int, limit: float) -> float | None:
    """Images per second of the measured trial(s) under one condition; None when slower than ``limit``."""
    env = _env(policy)
    others: list[subprocess.Popen] = []
    if neighbour == "busy":
        others.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP], env=env))
    elif neighbour == "trainer":  # a neighbour that trains for as long as the measured trial runs
        others.append(subprocess.Popen(_trial_command(threads, 100000, 0), env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL))
        time.sleep(3)  # the neighbour past its imports, training
    for process in others:
        if process.poll() is not None:
            raise SystemExit(f"the {neighbour} neighbour ended at once (exit {process.returncode})")
    measured = [subprocess.Popen(_trial_command(threads, steps, warmup), env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
                for _ in range(2 if neighbour == "pair" else 1)]
    deadline = time.monotonic() + limit
    try:
        rates = [_read(process, deadline) for process in measured]
    finally:
        for process in others:
            process.kill()
            process.wait()
    return None if any(rate is None for rate in rates) else sum(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150, help="measured steps per trial (default: 150)")
    parser.add_argument("--warmup", type=int, default=10, help="steps before timing (default: 10)")
    parser.add_argument("--threads", default="1,2", help="torch threads per trial (default: 1,2)")
    parser.add_argument("--policies", default=",".join(WAIT_POLICIES), help="OpenMP settings (default: all)")
    parser.add_argument("--conditions", default=",".join(NEIGHBOURS), help="neighbours (default: all)")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds before a trial is stopped (default: 120)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "trial_load.csv"))
    parser.add_argument("--trial", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trial:
        trial(int(args.threads), args.steps, args.warmup)
        return
    import pandas as pd

    rows = []
    for policy in args.policies.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            alone = None
            for neighbour in args.conditions.split(","):
                rate = run_condition(neighbour, threads, policy, args.steps, args.warmup, args.limit)
                if neighbour == "alone":
                    alone = rate
                ratio = rate / alone if rate and alone else None
                rows.append({"policy": policy, "threads": threads, "neighbour": neighbour,
                             "images_per_second": rate, "ratio_to_alone": ratio})
                shown = f"{rate:7.0f} img/s" if rate else f"slower than {args.steps * 64 / args.limit:.0f} img/s"
                print(f"{policy:8s} {threads} thread(s) {neighbour:8s} {shown}"
                      + (f"  {ratio:.2f}x alone" if ratio else ""), flush=True)
    frame = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
