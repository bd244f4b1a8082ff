"""nas-search from Python: ``search`` makes the run's settings as the command does and runs it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.api.data import data_argument, load_proxy_data
from nas.api.results import SearchResult
from nas.console import say, warn
from nas.errors import UserInputError
from nas.search.config import SearchConfig
from nas.search.final_stage import train_finalists as final_stage
from nas.search.reward import parse_flops_target
from nas.search.request import search_request
from nas.search.start_points import resolve_start_points
from nas.signals import handlers_kept
from nas.timings import timed


def search(target_flops: int | str | None = None, data: Any = "synthetic", *, out: str | Path | None = None,
           resume: bool = False, **options: Any) -> SearchResult:
    """nas-search: ``search(target_flops="400M", data="folder:photos/", out="runs/mine", trials=40)``.

    ``options``: SearchConfig's fields (controller, trials, steps, batch_size, proxy_resolution, resolution,
    finalists, finalist_epochs, start_from, seed, ...), and as nas-search's flags ``space`` (a name, a file or
    a dict), ``flops_window``, ``fit_width``, ``max_resolution`` and ``latency_device``. ``resume=True``
    continues ``out``. The caller's signal handlers are put back afterwards.
    """
    config, previous = search_config(target_flops, data, out=out, resume=resume, **options)
    return search_from_config(config, previous)


def search_config(target_flops: int | str | None = None, data: Any = "synthetic", *, out: str | Path | None = None,
                  resume: bool = False, **options: Any) -> tuple[SearchConfig, SearchConfig | None]:
    """The settings :func:`search` runs with (and a resumed run's saved ones): what nas-search makes of the same
    flags, by the same function (``nas.search.request.search_request``)."""
    options = dict(options)
    given = {name: value for name, value in options.items()
             if name not in ("space", "flops_window", "fit_width", "max_resolution", "latency_device")
             and value is not None}
    if options.get("flops_window") is not None:
        given["window"] = tuple(options["flops_window"])
    space = options.get("space")
    if isinstance(space, dict):
        given["space"], space = space, None
    if target_flops is not None:
        given["target_flops"] = _flops(target_flops)
    if out is not None:
        given["out"] = str(out)
    if not resume:
        given["data"] = data if isinstance(data, str) else (lambda run_dir: data_argument(data, run_dir))
    return search_request(given, resume=resume, space=None if space is None else str(space),
                          fit_width=options.get("fit_width"), max_resolution=options.get("max_resolution"),
                          latency_device=options.get("latency_device"))


def _flops(value: int | float | str) -> int | str:
    if isinstance(value, (int, float)):
        return int(value)
    try:  # what --target-flops takes: "400M", "0.4G", "4e8", "b0"
        return parse_flops_target(value)
    except ValueError as exc:
        raise UserInputError(f"target_flops: {exc}") from None


def search_from_config(config: SearchConfig, previous: SearchConfig | None = None, *,
                       finalists: bool = True) -> SearchResult:
    """What nas-search does once its settings are made (``previous``: the run's saved ones on a resume): check
    the start points and the latency table, load the data, search, and train the finalists (``finalists=False``:
    leave them to :func:`train_finalists`). Lines are said on the ``nas`` logger (nas.console)."""
    from nas.search.driver import preflight, run_search  # Ray: imported when a search runs

    with handlers_kept():
        # an unknown start point fails before the data loads (any class count checks the names alike)
        provisional = config.with_counted_target(num_classes=10)
        resolve_start_points(config.start_from, config.search_space(), provisional.sizing(num_classes=10))
        warnings, table = preflight(provisional)  # a wrong table file or too large a space: before the data loads
        for warning in warnings:
            warn(warning)
        with timed(config.out, "nas-search", "search") as stage:  # the data's loading included
            data = load_proxy_data(config.proxy)  # before Ray starts: a missing directory is one line
            if isinstance(config.objective.target_flops, str):
                name = config.objective.target_flops
                config = config.with_counted_target(data.num_classes)
                objective = config.objective
                say(f"target: {name}'s FLOPs at {objective.resolution} px with "
                    f"{objective.num_classes or data.num_classes} classes, {objective.target_flops / 1e6:.4g}M")
            outcome = run_search(config, data, previous=previous, latency_table=table)
            stage.status = None if outcome.finished else "interrupted"
        result = SearchResult(Path(config.out), outcome.trials, outcome.finished, config, outcome.start_names,
                              len(data.y_val))
        if finalists:
            train_finalists(result)
    return result


def train_finalists(result: SearchResult) -> None:
    """Train a finished search's finalists (its ``finalists`` setting; none: nothing to do) and make their
    winner best_b0.json."""
    from nas.engine.runner import Runner
    from nas.retrain.finalists import train_finalist  # nas-train's: torch and Ray, loaded when finalists train

    if result.finalists_due:
        resources = result.config.resources
        # one Ray instance for all its trainings (each nas-train joins it), not one started per training
        with handlers_kept(), timed(result.run_dir, "nas-search", "final stage"), \
                Runner(resources.address, bool(resources.debug), log_file=result.run_dir / "ray.log"):
            final_stage(result.config, train=train_finalist)
