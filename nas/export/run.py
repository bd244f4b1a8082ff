"""One export, as nas-export and ``nas.api.export`` both make it: the source (a spec file, or a nas-train run
directory's spec.json and best.pt), the model with its weights within the size bound, then the files, each
checked against PyTorch."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import UserInputError
from nas.network.counting import check_size
from search_spaces.spec import ArchSpec, load_spec


@dataclass
class Exportable:
    """The network to export: the model (eval mode), its spec, which weights it holds, the size it is checked at."""

    model: Any
    spec: ArchSpec
    weights: str  # "random", or which weights of the checkpoint
    resolution: int


def exportable(source: str | Path, checkpoint: str | Path | None, resolution: int | None) -> Exportable:
    """The network of ``source`` (a spec file, or a run directory: its spec.json and, unless ``checkpoint`` is
    given, its best.pt when there is one) at ``resolution`` (default: the checkpoint's, else the spec's),
    refused in one line when it is too large to run here."""
    from nas.export.model import exportable_model

    path = Path(source)
    if path.is_dir():
        if not (path / "spec.json").is_file():
            raise UserInputError(f"{source}: a directory without spec.json (give a spec file or a nas-train run)")
        checkpoint = checkpoint or (str(path / "best.pt") if (path / "best.pt").is_file() else None)
        path = path / "spec.json"
    model, spec, weights = exportable_model(load_spec(path), checkpoint)
    size = resolution or spec.resolution
    check_size(spec, size)
    return Exportable(model, spec, weights, size)


def write_onnx(network: Exportable, path: str | Path) -> float:
    """The network as ONNX at ``path``; the largest difference of onnxruntime's logits from PyTorch's."""
    from nas.export.onnx import check_onnx, export_onnx

    export_onnx(network.model, network.resolution, path)
    return check_onnx(path, network.model, network.resolution)


def write_torchscript(network: Exportable, path: str | Path) -> float:
    """The network as TorchScript at ``path``; the largest difference of the reloaded file's logits."""
    from nas.export.onnx import export_torchscript

    return export_torchscript(network.model, network.resolution, path)
