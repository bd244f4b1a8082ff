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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nas.api.data import data_argument
from nas.errors import UserInputError
from search_spaces.spec import ArchSpec, load_spec

__all__ = ["search", "train", "export", "scale", "SearchResult", "TrainResult", "ExportResult"]


@dataclass
class SearchResult:
    """A finished (or interrupted) search: its run directory, best spec and every candidate."""

    run_dir: Path
    best: ArchSpec | None  # best_b0.json (the finalists' winner with finalists)
    trials: pd.DataFrame  # trials.csv
    finished: bool

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best_b0.json"


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
    """An exported network: the files written and their largest difference from PyTorch."""

    onnx: Path | None
    torchscript: Path | None
    max_difference: float


def _flops(value: int | float | str | None) -> int | None:
    if value is None or isinstance(value, (int, float)):
        return None if value is None else int(value)
    from nas.search.reward import parse_flops  # what --target-flops takes: "400M", "0.4G", "4e8"

    try:
        return parse_flops(value)
    except ValueError as exc:
        raise UserInputError(f"target_flops: {exc}") from None


def search(target_flops: int | str | None = None, data: Any = "synthetic", *, out: str | Path | None = None,
           resume: bool = False, **options: Any) -> SearchResult:
    """nas-search: ``search(target_flops="400M", data="folder:photos/", out="runs/mine", trials=40)``.

    ``options``: SearchConfig's fields (controller, trials, steps, batch_size, proxy_resolution, resolution,
    finalists, finalist_epochs, start_from, space (a dict), seed, ...). ``resume=True`` continues ``out``.
    """
    from nas.data.datasets import load_data  # its DataError is a UserInputError
    from nas.retrain.finalists import train_finalists
    from nas.search.config import SearchConfig
    from nas.search.driver import preflight, run_search, saved_config

    run_dir = Path(out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    options = _search_options(options)
    if resume:
        previous = saved_config(run_dir)
        config = previous.resumed({**options, "out": str(run_dir),
                                   **({"target_flops": _flops(target_flops)} if target_flops else {})})
    else:
        data_text = data_argument(data, run_dir)
        config = SearchConfig.new(target_flops=_flops(target_flops), data=data_text, out=str(run_dir), **options)
        previous = None
    warnings, table = preflight(config)
    for warning in warnings:
        print(warning, file=sys.stderr)
    proxy_data = load_data(config.proxy.data, config.proxy.resolution, config.proxy.val_fraction, config.proxy.seed)
    outcome = run_search(config, proxy_data, previous=previous, latency_table=table)
    if outcome.finished and (outcome.trials["status"] == "ok").any():
        train_finalists(config)
    best = run_dir / "best_b0.json"
    return SearchResult(run_dir, load_spec(best) if best.is_file() else None, outcome.trials, outcome.finished)


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
    from nas.retrain.driver import default_out, resolve_spec, run_training
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
    if settings.out is None:
        settings.out = str(default_out(resolve_spec(settings.spec, settings.trial)))
    result = run_training(settings, resume=resume)
    run_dir = Path(settings.out)
    return TrainResult(run_dir, float(result["val_accuracy"]), result.get("test_accuracy"), run_dir / "best.pt",
                       result)


def export(run_or_spec: str | Path | TrainResult, onnx: str | Path | None = None, *,
           torchscript: str | Path | None = None, checkpoint: str | Path | None = None,
           resolution: int | None = None) -> ExportResult:
    """nas-export: ``export(trained, onnx="model.onnx")`` (a nas-train run directory, a TrainResult, or a spec
    file with ``checkpoint``); the export is checked against PyTorch and refused above the tolerance."""
    from nas.export.onnx import TOLERANCE
    from nas.export.run import exportable, write_onnx, write_torchscript

    if isinstance(run_or_spec, TrainResult):
        run_or_spec = run_or_spec.run_dir
    if onnx is None and torchscript is None:
        raise UserInputError("nothing to write: give onnx= and/or torchscript=")
    network = exportable(run_or_spec, checkpoint, resolution)
    differences = []
    if onnx is not None:
        differences.append(write_onnx(network, onnx))
    if torchscript is not None:
        differences.append(write_torchscript(network, torchscript))
    worst = max(differences)
    if not worst <= TOLERANCE:
        raise RuntimeError(f"the export differs from PyTorch by {worst:.2e} (more than {TOLERANCE:g})")
    return ExportResult(Path(onnx) if onnx else None, Path(torchscript) if torchscript else None, worst)


def scale(spec: str | Path | ArchSpec | SearchResult, *, preset: str | None = None, phi: float | None = None,
          alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15) -> ArchSpec:
    """nas-scale: ``scale(result, preset="b3")`` (EfficientNet's published row) or ``scale(spec, phi=2)`` (the
    compound formula with α, β, γ)."""
    from nas.network.scaling import preset as published_row, scale_compound

    if isinstance(spec, SearchResult):
        spec = spec.best_path
    base = spec if isinstance(spec, ArchSpec) else load_spec(spec)
    if (preset is None) == (phi is None):
        raise UserInputError("give one of preset= (b0..b7) or phi=")
    return published_row(base, preset) if preset is not None else scale_compound(base, alpha, beta, gamma, phi)

