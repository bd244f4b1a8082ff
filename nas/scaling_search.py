"""Step 1 of EfficientNet scaling: at φ = 1, train the baseline scaled by each (α, β, γ) of a small grid on
the proxy, one Ray Tune trial each; the best held-out accuracy wins."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from nas.records import write_json
from nas.scaling import coefficient_grid, compound, scale_compound
from nas.spec import ArchSpec, load_spec

COLUMNS = ["alpha", "beta", "gamma", "product", "params", "flops", "resolution", "proxy_resolution", "accuracy",
           "status", "reason", "seconds"]


def run_scaling_trial(config: dict[str, Any], data: Any = None, settings: dict[str, Any] | None = None) -> None:
    """One grid point (``config["point"]`` indexes ``settings["grid"]``): scale the baseline at φ = 1, train it
    at the proxy resolution x γ, report accuracy."""
    from ray import tune

    from nas.data import ProxyData, resize_images
    from nas.profile import profile
    from nas.search import trial_device
    from nas.train import TrainBudget, train_candidate

    settings = settings or {}
    started = time.perf_counter()
    alpha, beta, gamma = settings["grid"][config["point"]]
    metrics: dict[str, Any] = {"alpha": alpha, "beta": beta, "gamma": gamma, "product": alpha * beta ** 2 * gamma ** 2,
                               "status": "ok", "reason": "", "accuracy": 0.0, "params": 0, "flops": 0}
    try:
        spec = scale_compound(load_spec(settings["spec"]), alpha, beta, gamma, 1.0)
        counts = profile(spec, method="analytic")  # equal to fvcore's count exactly (tests/test_profile.py)
        proxy_resolution = int(round(data.resolution * compound(alpha, beta, gamma, 1.0)[2]))
        scaled = ProxyData(data.name, resize_images(data.x_train, proxy_resolution), data.y_train,
                           resize_images(data.x_val, proxy_resolution), data.y_val, data.num_classes)
        result = train_candidate(spec, scaled, TrainBudget(**settings["budget"]), device=trial_device(settings),
                                 seed=settings.get("seed", 0))
        metrics.update(params=counts["params"], flops=counts["flops"], resolution=spec.resolution,
                       proxy_resolution=proxy_resolution, accuracy=result["accuracy"], status=result["status"],
                       reason=result["reason"])
    except Exception as exc:  # noqa: BLE001 - recorded as a failed grid point
        metrics.update(status="failed", reason=f"{type(exc).__name__}: {exc}", accuracy=0.0)
    metrics["seconds"] = time.perf_counter() - started
    tune.report(metrics)


def grid_search(spec: ArchSpec, run_dir: Path, data: Any, budget: dict[str, Any], step: float = 0.1,
                tolerance: float = 0.1, address: str | None = None, seed: int = 0,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the grid as Ray Tune trials; write ``scaling.csv`` and ``coefficients.json``; return the winner."""
    import pandas as pd
    import ray
    from ray import tune

    from nas.search import _start_ray, plan_resources, versions

    grid = coefficient_grid(step, tolerance)
    if not grid:
        raise ValueError(f"the grid (step {step}, tolerance {tolerance}) has no point with α·β²·γ² near 2")
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    log(f"grid search: {len(grid)} (α, β, γ) with α·β²·γ² within {tolerance} of 2, proxy {data.describe()}")
    we_started = _start_ray(address)
    rows: list[dict[str, Any]] = []
    try:
        cpus, gpus, concurrency = plan_resources(ray.cluster_resources())
        settings = {"spec": spec.to_dict(), "budget": budget, "seed": seed, "cpus_per_trial": cpus,
                    "gpus_per_trial": gpus, "grid": grid}

        class Progress(tune.Callback):
            def on_trial_result(self, iteration, trials, trial, result, **info):
                row = {k: result.get(k) for k in COLUMNS}
                rows.append(row)
                pd.DataFrame(rows, columns=COLUMNS).to_csv(run_dir / "scaling.csv", index=False)
                log(f"[{len(rows):>3}/{len(grid)}] α={row['alpha']:.2f} β={row['beta']:.2f} γ={row['gamma']:.2f}  "
                    f"{(row['flops'] or 0) / 1e6:8.1f}M  acc {row['accuracy']:.3f}  {row['status']}")

        # one grid point per trial: the triples are passed through a single grid axis
        space = {"point": tune.grid_search(list(range(len(grid))))}
        trainable = tune.with_resources(tune.with_parameters(run_scaling_trial, data=data, settings=settings),
                                        {"cpu": cpus, "gpu": gpus})
        tuner = tune.Tuner(trainable, param_space=space,
                           tune_config=tune.TuneConfig(max_concurrent_trials=concurrency, reuse_actors=True),
                           run_config=tune.RunConfig(name="scaling", storage_path=str(run_dir / "ray"), verbose=0,
                                                     callbacks=[Progress()],
                                                     failure_config=tune.FailureConfig(max_failures=2)))
        tuner.fit()
    finally:
        if we_started:
            ray.shutdown()
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        raise RuntimeError("every grid point failed; see scaling.csv")
    best = max(ok, key=lambda r: (r["accuracy"], -abs(r["product"] - 2)))
    result = {"alpha": best["alpha"], "beta": best["beta"], "gamma": best["gamma"], "product": best["product"],
              "accuracy": best["accuracy"], "grid": {"step": step, "tolerance": tolerance, "points": len(grid)},
              "baseline": spec.name, "proxy_data": data.name, "budget": budget, "versions": versions()}
    write_json(run_dir / "coefficients.json", result)
    return result
