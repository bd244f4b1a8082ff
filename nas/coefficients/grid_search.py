"""Step 1 of EfficientNet scaling: at φ = 1, train the baseline scaled by each (α, β, γ) of a small grid on
the proxy, one Ray Tune trial each; the best held-out accuracy wins."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from nas.console import say
from nas.search.run_files import write_json
from nas.network.scaling import coefficient_grid, compound, scale_compound
from search_spaces.spec import ArchSpec, load_spec
from nas.training.budget import TrainBudget

COLUMNS = ["alpha", "beta", "gamma", "product", "params", "flops", "resolution", "proxy_resolution", "accuracy",
           "status", "reason", "seconds"]


@dataclass
class GridTrialSettings:
    """What every grid-point trial receives: the baseline, the grid, the budget, the seed and its resources."""

    spec: dict[str, Any]
    grid: list[tuple[float, float, float]]
    budget: TrainBudget
    seed: int = 0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0


def run_scaling_trial(config: dict[str, Any], data: Any = None, settings: GridTrialSettings | None = None) -> None:
    """One grid point (``config["point"]`` indexes ``settings.grid``): scale the baseline at φ = 1, train it
    at the proxy resolution x γ, report accuracy."""
    from ray import tune

    from nas.data.datasets import ProxyData, resize_images
    from nas.network.counting import profile
    from nas.training.proxy import train_candidate
    from nas.engine.measure import release_memory, trial_device

    if settings is None:
        raise ValueError("run_scaling_trial needs its settings (settings=...)")
    started = time.perf_counter()
    alpha, beta, gamma = settings.grid[config["point"]]
    metrics: dict[str, Any] = {"alpha": alpha, "beta": beta, "gamma": gamma, "product": alpha * beta ** 2 * gamma ** 2,
                               "status": "ok", "reason": "", "accuracy": 0.0, "params": 0, "flops": 0}
    try:
        spec = scale_compound(load_spec(settings.spec), alpha, beta, gamma, 1.0)
        counts = profile(spec, method="analytic")  # equal to fvcore's count exactly (tests/test_profile.py)
        proxy_resolution = int(round(data.resolution * compound(alpha, beta, gamma, 1.0)[2]))
        scaled = ProxyData(data.name, resize_images(data.x_train, proxy_resolution), data.y_train,
                           resize_images(data.x_val, proxy_resolution), data.y_val, data.num_classes)
        result = train_candidate(spec, scaled, settings.budget,
                                 device=trial_device(settings.cpus_per_trial, settings.gpus_per_trial),
                                 seed=settings.seed)
        metrics.update(params=counts["params"], flops=counts["flops"], resolution=spec.resolution,
                       proxy_resolution=proxy_resolution, accuracy=result["accuracy"], status=result["status"],
                       reason=result["reason"])
    except Exception as exc:  # noqa: BLE001 - recorded as a failed grid point
        metrics.update(status="failed", reason=f"{type(exc).__name__}: {exc}", accuracy=0.0)
    release_memory()
    metrics["seconds"] = time.perf_counter() - started
    tune.report(metrics)


def grid_search(spec: ArchSpec, run_dir: Path, data: Any, budget: TrainBudget, step: float = 0.1,
                tolerance: float = 0.1, address: str | None = None, seed: int = 0,
                log: Callable[[str], None] = say, debug: bool = False) -> dict[str, Any]:
    """Run the grid as Ray Tune trials; write ``scaling.csv`` and ``coefficients.json``; return the winner."""
    import pandas as pd
    from ray import tune

    from nas.versions import versions
    from nas.engine.runner import Runner

    grid = coefficient_grid(step, tolerance)
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    log(f"grid search: {len(grid)} (α, β, γ) with α·β²·γ² within {tolerance} of 2, proxy {data.describe()}")
    rows: list[dict[str, Any]] = []

    class Progress(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            row = {k: result.get(k) for k in COLUMNS}
            rows.append(row)
            pd.DataFrame(rows, columns=COLUMNS).to_csv(run_dir / "scaling.csv", index=False)
            log(f"[{len(rows):>3}/{len(grid)}] α={row['alpha']:.2f} β={row['beta']:.2f} γ={row['gamma']:.2f}  "
                f"{(row['flops'] or 0) / 1e6:8.1f}M  acc {row['accuracy']:.3f}  {row['status']}")

    with Runner(address, debug, log_file=Path(run_dir) / "ray.log") as runner:
        settings = GridTrialSettings(spec=spec.to_dict(), grid=grid, budget=budget, seed=seed,
                                     cpus_per_trial=runner.resources.cpus, gpus_per_trial=runner.resources.gpus)
        # one grid point per trial: the triples are passed through a single grid axis
        finished = runner.run(tune.with_parameters(run_scaling_trial, data=data, settings=settings),
                              storage=run_dir / "ray", name="scaling", callbacks=[Progress()],
                              param_space={"point": tune.grid_search(list(range(len(grid))))})
    if not finished:
        raise KeyboardInterrupt
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        raise RuntimeError("every grid point failed; see scaling.csv")
    best = max(ok, key=lambda r: (r["accuracy"], -abs(r["product"] - 2)))
    result = {"alpha": best["alpha"], "beta": best["beta"], "gamma": best["gamma"], "product": best["product"],
              "accuracy": best["accuracy"], "grid": {"step": step, "tolerance": tolerance, "points": len(grid)},
              "baseline": spec.name, "proxy_data": data.name, "budget": budget.to_dict(), "versions": versions()}
    write_json(run_dir / "coefficients.json", result)
    return result
