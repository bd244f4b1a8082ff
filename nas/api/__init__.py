"""The toolkit from Python: search, train, export and scale as functions (docs/python.md).

They take what the commands' flags take (as keyword arguments, named as the flags are, ``--target-flops``
becoming ``target_flops``) and return result objects instead of printing. Data is anything ``--data`` takes (a
string), numpy arrays ``(x, y)`` or a dict with ``x``, ``y`` and optionally ``x_test``, ``y_test`` (uint8,
N x H x W x 3), or a ``torch.utils.data.Dataset`` of (image, label) pairs; arrays and datasets are written once
as an .npz in the run directory, so a run can be resumed and read back like any other. Bad input raises
``nas.errors.UserInputError`` (a ValueError) with the same one-line message the commands print.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nas.api.data import data_argument, load_proxy_data
from nas.errors import UserInputError
from search_spaces.spec import ArchSpec, load_spec

__all__ = ["search", "train", "export", "scale", "SearchResult", "TrainResult", "ExportResult"]


@dataclass
class SearchResult:
    """A finished (or interrupted) search: its run directory, best spec and every candidate."""

    run_dir: Path
    trials: pd.DataFrame  # trials.csv
    finished: bool
    config: Any = None  # the run's SearchConfig
    start_names: dict = field(default_factory=dict)  # choices tuple -> start point name
    held_out_images: int = 0  # the proxy's held-out split

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best_b0.json"

    @property
    def best(self) -> ArchSpec | None:
        """best_b0.json (the finalists' winner with finalists); None before any candidate trained."""
        return load_spec(self.best_path) if self.best_path.is_file() else None

    @property
    def finalists_due(self) -> bool:
        """Whether finalists are to be trained: the search finished, asked for them and trained a candidate."""
        return bool(self.finished and self.config.finalists and (self.trials["status"] == "ok").any())


@dataclass
class TrainResult:
    """A finished nas-train run: accuracies, the checkpoint, and result.json whole."""

    run_dir: Path
    val_accuracy: float
    test_accuracy: float | None
    checkpoint: Path
    result: dict[str, Any]


@dataclass
class ExportResult:
    """An exported network: the files written, each one's largest difference from PyTorch, and what was
    exported (the spec, which weights, the input size it was checked at)."""

    onnx: Path | None
    torchscript: Path | None
    differences: dict[str, float]  # "onnx" / "torchscript" -> max abs difference from PyTorch
    spec: ArchSpec
    weights: str  # "random", or which weights of the checkpoint
    resolution: int

    @property
    def max_difference(self) -> float:
        return max(self.differences.values())


def _flops(value: int | float | str | None) -> int | str | None:
    if value is None or isinstance(value, (int, float)):
        return None if value is None else int(value)
    from nas.search.reward import parse_flops_target  # what --target-flops takes: "400M", "0.4G", "4e8", "b0"

    try:
        return parse_flops_target(value)
    except ValueError as exc:
        raise UserInputError(f"target_flops: {exc}") from None


def search(target_flops: int | str | None = None, data: Any = "synthetic", *, out: str | Path | None = None,
           resume: bool = False, **options: Any) -> SearchResult:
    """nas-search: ``search(target_flops="400M", data="folder:photos/", out="runs/mine", trials=40)``.

    ``options``: SearchConfig's fields (controller, trials, steps, batch_size, proxy_resolution, resolution,
    finalists, finalist_epochs, start_from, space (a dict), seed, ...), and as nas-search's flags ``fit_width``
    and ``max_resolution``. ``resume=True`` continues ``out``.
    """
    from nas.search.config import SearchConfig
    from nas.search.driver import saved_config
    from nas.search.run import trained_classes

    run_dir = Path(out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    options = _search_options(options)
    if resume:
        fixed = [name for name in ("fit_width", "max_resolution") if options.get(name) is not None]
        if fixed:
            raise UserInputError(f"{fixed[0]}: set when a search starts (the run's space.json keeps it)")
        options = {k: v for k, v in options.items() if k not in ("fit_width", "max_resolution")}
        previous = saved_config(run_dir)
        config = previous.resumed({**options, "out": str(run_dir),
                                   **({"target_flops": _flops(target_flops)} if target_flops else {})},
                                  num_classes=trained_classes(run_dir))
    else:
        data_text = data_argument(data, run_dir)
        config = SearchConfig.new(target_flops=_flops(target_flops), data=data_text, out=str(run_dir), **options)
        previous = None
    return search_from_config(config, previous)


def search_from_config(config: Any, previous: Any = None, *, finalists: bool = True) -> SearchResult:
    """What nas-search does once its settings are made (a SearchConfig; ``previous``: the run's saved one on a
    resume): check the start points and the latency table, load the data (its warnings on stderr), search, and
    train the finalists (``finalists=False``: leave them to ``train_finalists``)."""
    from nas.search.driver import preflight, run_search
    from nas.search.start_points import resolve_start_points

    # an unknown start point fails before the data loads (any class count checks the names alike)
    provisional = config.with_counted_target(num_classes=10)
    resolve_start_points(config.start_from, config.search_space(), provisional.sizing(num_classes=10))
    warnings, table = preflight(provisional)  # a wrong table file or too large a space: before the data loads
    for warning in warnings:
        print(warning, file=sys.stderr)
    data = load_proxy_data(config.proxy)  # before Ray starts: a missing directory is one line
    if isinstance(config.target_flops, str):
        name = config.target_flops
        config = config.with_counted_target(data.num_classes)
        print(f"target: {name}'s FLOPs at {config.resolution} px with {config.num_classes or data.num_classes} "
              f"classes, {config.target_flops / 1e6:.4g}M")
    outcome = run_search(config, data, previous=previous, latency_table=table)
    result = SearchResult(Path(config.out), outcome.trials, outcome.finished, config, outcome.start_names,
                          len(data.y_val))
    if finalists:
        train_finalists(result)
    return result


def train_finalists(result: SearchResult) -> None:
    """Train a finished search's finalists (its ``finalists`` setting; none: nothing to do) and make their
    winner best_b0.json."""
    from nas.retrain.finalists import train_finalists as train_them

    if result.finalists_due:
        train_them(result.config)


def _search_options(options: dict[str, Any]) -> dict[str, Any]:
    """The flags' names and values as SearchConfig's: flops_window -> window, a space's name or file -> its
    configuration."""
    from search_spaces.mnasnet import space_named

    options = dict(options)
    if "flops_window" in options:
        options["window"] = tuple(options.pop("flops_window"))
    space = options.get("space")
    if isinstance(space, (str, Path)):
        options["space"] = space_named(str(space)).config.to_dict()
    return options


def train(spec: str | Path | ArchSpec | SearchResult, data: Any = "synthetic", *, out: str | Path | None = None,
          trial: int | None = None, resolution: int | None = None, workers: int = 1, resume: bool = False,
          **recipe: Any) -> TrainResult:
    """nas-train: ``train(result.best_path, data="folder:photos/", resolution=64, epochs=30)``.

    ``spec``: a spec file, a nas-search run directory (with ``trial``: that trial), an ArchSpec, or a
    SearchResult. ``recipe``: TrainRecipe's fields (epochs, batch_size, optimizer, lr, weight_decay, seed, ...).
    """
    from nas.retrain.config import TrainSettings, saved_settings
    from nas.retrain.driver import default_out
    from nas.training.recipe import TrainRecipe

    if isinstance(spec, SearchResult):
        spec = spec.run_dir
    if resume:
        settings = saved_settings(Path(out)) if out else None
        if settings is None:
            raise UserInputError("resume=True needs out, the run directory to continue")
        settings.out = str(out)
    else:
        if isinstance(spec, ArchSpec):
            run_dir = Path(out) if out else default_out(spec)
            run_dir.mkdir(parents=True, exist_ok=True)
            from nas.files import save_spec

            save_spec(spec, run_dir / "input_spec.json")
            spec, out = run_dir / "input_spec.json", run_dir
        run_dir = Path(out) if out else None
        try:
            recipe_value = TrainRecipe(**recipe)
        except (TypeError, ValueError) as exc:
            raise UserInputError(str(exc)) from None
        settings = TrainSettings(spec=str(spec), trial=trial, data=data_argument(data, run_dir or Path("runs")),
                                 recipe=recipe_value, resolution=resolution, out=str(out) if out else None,
                                 workers=workers)
    return train_from_settings(settings, resume=resume)


def train_from_settings(settings: Any, resume: bool = False) -> TrainResult:
    """What nas-train does once its settings are made (a TrainSettings): train on Ray Train and read back the
    run's result."""
    from nas.retrain.driver import default_out, resolve_spec, run_training
    from nas.signals import on_stop

    if settings.out is None:
        settings.out = str(default_out(resolve_spec(settings.spec, settings.trial)))
    on_stop("nas-train", resume=f"nas-train --resume --out {settings.out}")
    result = run_training(settings, resume=resume)
    run_dir = Path(settings.out)
    return TrainResult(run_dir, float(result["val_accuracy"]), result.get("test_accuracy"), run_dir / "best.pt",
                       result)


def export(run_or_spec: str | Path | TrainResult, onnx: str | Path | None = None, *,
           torchscript: str | Path | None = None, checkpoint: str | Path | None = None,
           resolution: int | None = None, check: bool = True) -> ExportResult:
    """nas-export: ``export(trained, onnx="model.onnx")`` (a nas-train run directory, a TrainResult, or a spec
    file with ``checkpoint``); each file is checked against PyTorch, and with ``check`` a difference above the
    tolerance raises (without: the caller reads ``differences``)."""
    from nas.export.onnx import TOLERANCE
    from nas.export.run import exportable, write_onnx, write_torchscript

    if isinstance(run_or_spec, TrainResult):
        run_or_spec = run_or_spec.run_dir
    if onnx is None and torchscript is None:
        raise UserInputError("nothing to write: give onnx= and/or torchscript=")
    network = exportable(run_or_spec, checkpoint, resolution)
    differences = {}
    if onnx is not None:
        differences["onnx"] = write_onnx(network, onnx)
    if torchscript is not None:
        differences["torchscript"] = write_torchscript(network, torchscript)
    result = ExportResult(Path(onnx) if onnx else None, Path(torchscript) if torchscript else None, differences,
                          network.spec, network.weights, network.resolution)
    if check and not result.max_difference <= TOLERANCE:
        raise RuntimeError(f"the export differs from PyTorch by {result.max_difference:.2e} (more than "
                           f"{TOLERANCE:g})")
    return result


def scale(spec: str | Path | ArchSpec | SearchResult, *, preset: str | None = None, phi: float | None = None,
          alpha: float | None = None, beta: float | None = None, gamma: float | None = None,
          width: float | None = None, depth: float | None = None, resolution: int | None = None) -> ArchSpec:
    """nas-scale, one network: ``scale(result, preset="b3")`` (EfficientNet's published row), ``scale(spec,
    phi=2)`` (the compound formula with α, β, γ; the paper's by default) or ``scale(spec, width=1.2, depth=1.4,
    resolution=260)``."""
    from nas.network.scaling import one_network_conflict, preset as published_row, scale_compound, scale_spec

    base = _base_spec(spec)
    manual = (width, depth, resolution)
    given = [name for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)) if value is not None]
    conflict = one_network_conflict(preset is not None, phi is not None, manual, given, lambda name: f"{name}=")
    if conflict:  # as nas-scale refuses them: two ways at once, or a coefficient that would be ignored
        raise UserInputError(conflict)
    if phi is not None:
        return scale_compound(base, *_coefficients(alpha, beta, gamma), phi)
    if preset is not None:
        return published_row(base, preset.lower())
    if all(v is None for v in manual):
        raise UserInputError("give one of preset= (b0..b7), phi=, or width=, depth= and resolution=")
    return scale_spec(base, width, depth, resolution, name=f"{base.name}-w{width:g}-d{depth:g}-r{resolution}")


def scale_family(spec: str | Path | ArchSpec | SearchResult, alpha: float | None = None, beta: float | None = None,
                 gamma: float | None = None) -> list[ArchSpec]:
    """nas-scale --family: B1..B7 as EfficientNet publishes them, or with coefficients φ = 1..7 by the
    compound formula."""
    from nas.network.scaling import PRESETS, preset as published_row, scale_compound

    base = _base_spec(spec)
    if alpha is None and beta is None and gamma is None:
        return [published_row(base, name) for name in PRESETS if name != "b0"]
    return [scale_compound(base, *_coefficients(alpha, beta, gamma), phi) for phi in range(1, 8)]


def _base_spec(spec: str | Path | ArchSpec | SearchResult) -> ArchSpec:
    if isinstance(spec, SearchResult):
        spec = spec.best_path
    return spec if isinstance(spec, ArchSpec) else load_spec(spec)


def _coefficients(alpha: float | None, beta: float | None, gamma: float | None) -> tuple[float, float, float]:
    """α, β, γ, each the paper's where not given."""
    from nas.network.scaling import PAPER_COEFFICIENTS

    return tuple(c if c is not None else d for c, d in zip((alpha, beta, gamma), PAPER_COEFFICIENTS))
