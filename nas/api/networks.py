"""nas-export and nas-scale from Python: an exported network checked against PyTorch, scaled specs."""
from __future__ import annotations

from pathlib import Path

from nas.api.results import ExportResult, SearchResult, TrainResult
from nas.errors import UserInputError
from nas.export.run import exportable, write_onnx, write_torchscript
from nas.network.scaling import (PAPER_COEFFICIENTS, PRESETS, one_network_conflict, preset as published_row,
                                 scale_compound, scale_spec)
from search_spaces.spec import ArchSpec, load_spec


def export(run_or_spec: str | Path | TrainResult, onnx: str | Path | None = None, *,
           torchscript: str | Path | None = None, checkpoint: str | Path | None = None,
           resolution: int | None = None, check: bool = True) -> ExportResult:
    """nas-export: ``export(trained, onnx="model.onnx")`` (a nas-train run directory, a TrainResult, or a spec
    file with ``checkpoint``); each file is checked against PyTorch, and with ``check`` a difference above the
    tolerance raises (without: the caller reads ``differences``)."""

    from nas.export.onnx import TOLERANCE  # torch: imported when it exports

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
    return tuple(c if c is not None else d for c, d in zip((alpha, beta, gamma), PAPER_COEFFICIENTS))
