"""The trial side of a search: build the candidate, count it with fvcore, train it on the proxy, report.

A trial measures; it does not score. The reward is computed on the driver from the reported accuracy and
FLOPs (``SearchConfig.score``), so a run can be rescored and a cached result can serve any target.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from nas.config import SearchConfig

# Bump when a change to training or evaluation changes what a trained candidate's accuracy means: results
# cached under another version are then not served (nas/cache.py keys them by it).
TRAINER_VERSION = 1


def trial_device(cpus_per_trial: float | None, gpus_per_trial: float | None) -> str:
    """Set this trial's torch threads to its CPU request and return its device ("cuda" with a GPU request)."""
    import torch

    torch.set_num_threads(max(1, int(cpus_per_trial or 1)))
    return "cuda" if gpus_per_trial and torch.cuda.is_available() else "cpu"


def release_memory() -> None:
    """Give the memory freed by a finished training back to the operating system.

    glibc's allocator keeps freed heap pages of a trial's activations and gradients mapped, so a reused
    trial worker grew by tens of MiB per trial (0.24 to 0.99 GiB over 20 trainings in one process, 2.4 GiB
    in one 16-trial search); ``malloc_trim(0)`` after each one keeps it flat (0.43 GiB). Elsewhere (no
    glibc) this only collects garbage.
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def evaluate_candidate(spec_dict: dict[str, Any], data: Any, config: SearchConfig, seed: int,
                       report: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """FLOPs and params with fvcore at the spec's resolution, then brief proxy training; the measurements.

    With ``config.scheduler`` set and ``report`` given, the held-out accuracy at each rung of the step budget
    is passed to ``report`` as intermediate measurements (``final`` False) before training goes on; a
    scheduler may end the trial there. Every failure inside is returned as ``status="failed"`` with its
    reason rather than raised, so that one bad candidate never stops the search.
    """
    from nas.profile import profile
    from nas.spec import load_spec
    from nas.train import rung_steps, train_candidate

    started = time.perf_counter()
    metrics: dict[str, Any] = {"status": "ok", "reason": "", "accuracy": 0.0, "flops": 0, "params": 0, "steps": 0}
    try:
        spec = load_spec(spec_dict)
        counts = profile(spec, method="fvcore")
        metrics.update(flops=counts["flops"], params=counts["params"])
        budget = config.budget()
        rungs = (rung_steps(budget.total_steps(len(data.y_train)))
                 if config.scheduler != "none" and report is not None else [])

        def at_rung(step: int, accuracy: float) -> None:
            if report is not None:
                report(dict(metrics, accuracy=accuracy, steps=step, final=False,
                            seconds=time.perf_counter() - started))

        result = train_candidate(spec, data, budget, device=trial_device(config.cpus_per_trial,
                                 config.gpus_per_trial), seed=seed, rungs=rungs, report=at_rung)
        metrics.update({k: result[k] for k in ("status", "reason", "accuracy", "train_seconds",
                                               "images_per_second", "final_loss", "steps")})
    except Exception as exc:  # noqa: BLE001 - recorded as a failed trial
        metrics.update(status="failed", reason=f"{type(exc).__name__}: {exc}", accuracy=0.0)
    release_memory()
    metrics.update(seconds=time.perf_counter() - started, final=True)
    return metrics


def run_trial(trial_config: dict[str, Any], data: Any = None, search: SearchConfig | None = None) -> None:
    """One Ray Tune trial of nas-search: ``trial_config`` holds ``trial``, ``choices`` and ``spec``; ``search``
    is the search's configuration with the planned resources (passed by ``tune.with_parameters``)."""
    from ray import tune

    if search is None:
        raise ValueError("run_trial needs the search's configuration (search=...)")
    trial = trial_config["trial"]
    metrics = evaluate_candidate(trial_config["spec"], data, search, seed=search.seed + trial,
                                 report=lambda measured: tune.report({"trial": trial, **measured}))
    tune.report({"trial": trial, **metrics})
