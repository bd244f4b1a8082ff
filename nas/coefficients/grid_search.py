"""Step 1 of EfficientNet scaling: at φ = 1, train the baseline scaled by each (α, β, γ) of a small grid on
the proxy, one job of the engine each (served from the result cache where known); the best held-out accuracy
wins."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypedDict

import pandas as pd

from nas.console import say
from nas.engine.cache import open_cache
from nas.engine.job import Job, Measurement, failed
from nas.files import RunLock
from nas.network.scaling import ScalingError, coefficient_grid, compound, scale_compound
from nas.engine.runner import Runner, TrialResources
from nas.network.counting import check_size
from nas.search.run_files import write_json
from nas.timings import timed
from nas.training.proxy_settings import ProxySettings
from nas.versions import versions
from search_spaces.spec import ArchSpec, SpecError, spec_from_dict


class GridRow(TypedDict):
    """One row of scaling.csv: one grid point, trained at φ = 1."""

    alpha: float
    beta: float
    gamma: float
    product: float
    params: int
    flops: int
    resolution: int
    proxy_resolution: int
    accuracy: float
    status: str
    reason: str
    seconds: float
    source: str  # trained | cache | scaling (the point could not be scaled: never trained)


COLUMNS = list(GridRow.__annotations__)


@dataclass(frozen=True)
class GridPoint:
    """A grid point, its baseline scaled at φ = 1 (None when it cannot be), and the job that trains it."""

    alpha: float
    beta: float
    gamma: float
    job: Job | None
    reason: str = ""

    def row(self, measured: Measurement, source: str) -> GridRow:
        spec, resolution = (self.job.spec, self.job.train_resolution) if self.job else ({}, None)
        return {"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma,
                "product": self.alpha * self.beta ** 2 * self.gamma ** 2, "params": measured.params,
                "flops": measured.flops, "resolution": spec.get("resolution"), "proxy_resolution": resolution,
                "accuracy": measured.accuracy, "status": measured.status, "reason": measured.reason,
                "seconds": measured.seconds, "source": source}


def plan_points(spec: ArchSpec, grid: list[tuple[float, float, float]], proxy: ProxySettings) -> list[GridPoint]:
    """Each grid point's job: the baseline scaled at φ = 1, trained at the proxy's resolution x γ."""
    points = []
    for alpha, beta, gamma in grid:
        try:
            scaled = scale_compound(spec, alpha, beta, gamma, 1.0)
        except (ScalingError, SpecError) as exc:
            points.append(GridPoint(alpha, beta, gamma, None, f"{type(exc).__name__}: {exc}"))
            continue
        resolution = int(round(proxy.resolution * compound(alpha, beta, gamma, 1.0)[2]))
        points.append(GridPoint(alpha, beta, gamma, Job(spec=scaled.to_dict(), budget=proxy.recipe(), seed=proxy.seed,
                                                        train_resolution=resolution, train_width=proxy.width)))
    return points


def check_grid(spec: ArchSpec, proxy: ProxySettings, step: float = 0.1, tolerance: float = 0.1) -> None:
    """Every point of the grid within the size bound at the resolutions it is counted and trained at, before
    any data loads or anything trains (a UserInputError otherwise; a grid too fine or empty is one too)."""
    for point in plan_points(spec, coefficient_grid(step, tolerance), proxy):
        if point.job is not None:  # a point that cannot be scaled is recorded as such, never trained
            check_size(spec_from_dict(point.job.spec), max(spec.resolution, point.job.train_resolution))


def _log_row(log: Callable[[str], None], done: int, total: int, row: GridRow) -> None:
    log(f"[{done:>3}/{total}] α={row['alpha']:.2f} β={row['beta']:.2f} γ={row['gamma']:.2f}  "
        f"{(row['flops'] or 0) / 1e6:8.1f}M  acc {row['accuracy']:.3f}  {row['status']}"
        f"{'  (cached)' if row['source'] == 'cache' else ''}")


def grid_search(spec: ArchSpec, run_dir: Path, data: Any, proxy: ProxySettings, resources: TrialResources,
                step: float = 0.1, tolerance: float = 0.1, log: Callable[[str], None] = say) -> dict[str, Any]:
    """Train the grid on ``data`` (loaded with ``proxy``'s settings) where ``resources`` say; write
    ``scaling.csv`` and ``coefficients.json``; return the winner."""
    grid = coefficient_grid(step, tolerance)
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    log(f"grid search: {len(grid)} (α, β, γ) with α·β²·γ² within {tolerance} of 2, proxy {data.describe()}")
    points = plan_points(spec, grid, proxy)
    rows: list[GridRow] = []

    def keep(point: GridPoint, measured: Measurement, source: str) -> None:
        rows.append(point.row(measured, source))
        pd.DataFrame(rows, columns=COLUMNS).to_csv(run_dir / "scaling.csv", index=False)
        _log_row(log, len(rows), len(grid), rows[-1])

    cache = open_cache(resources, {"proxy": data})
    try:
        with RunLock(run_dir, "nas-scale --grid-search"), timed(run_dir, "nas-scale", "grid search"):
            pending = _served(points, cache, keep)
            if pending:
                _train(pending, run_dir, data, resources, cache, keep)
    finally:
        if cache is not None:
            cache.close()
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        raise RuntimeError("every grid point failed; see scaling.csv")
    best = max(ok, key=lambda r: (r["accuracy"], -abs(r["product"] - 2)))

    result = {"alpha": best["alpha"], "beta": best["beta"], "gamma": best["gamma"], "product": best["product"],
              "accuracy": best["accuracy"], "grid": {"step": step, "tolerance": tolerance, "points": len(grid)},
              "baseline": spec.name, "proxy_data": data.name, "proxy_width": proxy.width,
              "budget": {**proxy.recipe().to_dict(), "seed": proxy.seed},  # the seed every point trains with
              "versions": versions()}
    write_json(run_dir / "coefficients.json", result)
    return result


def _served(points: list[GridPoint], cache: Any,
            keep: Callable[[GridPoint, Measurement, str], None]) -> list[GridPoint]:
    """Keep the points the cache knows and those that cannot be scaled; the rest, to train."""
    pending = []
    for point in points:
        if point.job is None:
            keep(point, failed(point.reason), "scaling")
            continue
        hit = cache.get(point.job) if cache is not None else None
        if hit is None:
            pending.append(point)
        else:
            keep(point, hit, "cache")
    return pending


def _train(pending: list[GridPoint], run_dir: Path, data: Any, resources: TrialResources, cache: Any,
           keep: Callable[[GridPoint, Measurement, str], None]) -> None:
    """Train the pending points as the engine's jobs; remember the successful ones in the cache."""
    from nas.engine.trainable import JobEvents, JobList

    def kept(config: dict[str, Any], measured: Measurement) -> None:
        point = pending[config["index"]]
        if cache is not None:
            cache.put(point.job, measured, run=str(run_dir))
        keep(point, measured, "trained")

    events = JobEvents(on_result=kept)  # a worker that errored comes as a failed measurement
    with Runner.for_settings(resources, log_file=run_dir / "ray.log") as runner:
        finished = runner.run(JobList([p.job for p in pending]), {"proxy": data}, storage=run_dir / "ray",
                              name=f"scaling-{time.strftime('%Y%m%d-%H%M%S')}", num_samples=len(pending),
                              callbacks=[events])
    if not finished:
        raise KeyboardInterrupt
