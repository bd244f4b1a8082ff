"""ONNX and TorchScript export, each checked by running the exported file against PyTorch on random inputs."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from nas.errors import UserInputError, first_line
from nas.files import atomic_path
from nas.latency.onnx_runtime import measure_session, network_onnx, onnx_session
from nas.latency.tables import check_measurement

TOLERANCE = 1e-4  # the largest absolute difference in the logits accepted between PyTorch and the export
CHECK_BATCHES = (1, 3)  # batch sizes of the check: the exported batch dimension is dynamic


class ExportError(UserInputError):
    """The exporter cannot take this network (an op it has no translation for, a shape it cannot trace)."""


def export_onnx(model: torch.nn.Module, resolution: int, path: str | Path) -> None:
    """Write ``model`` (eval mode) as ONNX with a dynamic batch, through torch.export (the dynamo exporter)."""
    try:
        onnx_bytes = network_onnx(model, torch.rand(2, 3, resolution, resolution))
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(onnx_bytes)
    except ExportError:
        raise
    except ModuleNotFoundError as exc:  # the installation, not the network
        raise RuntimeError(f"the ONNX exporter needs the {exc.name} package, which is not installed: pip install "
                           f"{exc.name}") from None
    except Exception as exc:  # noqa: BLE001 - whatever the exporter raises, the user gets one line
        raise ExportError(f"the ONNX exporter cannot take this network ({first_line(exc)})") from None


def onnx_summary(path: str | Path) -> dict[str, int]:
    """Operator counts of interest in an ONNX file: nodes, and BatchNormalization nodes left unfolded."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    ops = [node.op_type for node in graph.node]
    return {"nodes": len(ops), "batch_norm_nodes": ops.count("BatchNormalization"), "conv_nodes": ops.count("Conv")}


def largest_difference(exported: Callable[[torch.Tensor], np.ndarray], model: torch.nn.Module, resolution: int,
                       seed: int = 0) -> float:
    """The largest absolute difference between ``exported``'s and ``model``'s logits on random inputs at each
    of CHECK_BATCHES batch sizes (the exported batch dimension is dynamic)."""
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    with torch.no_grad():
        for batch in CHECK_BATCHES:
            x = torch.rand(batch, 3, resolution, resolution, generator=generator)
            worst = max(worst, float(np.abs(exported(x) - model(x).numpy()).max()))
    return worst


def check_onnx(path: str | Path, model: torch.nn.Module, resolution: int, seed: int = 0) -> float:
    """The largest absolute difference between onnxruntime's and PyTorch's logits on random inputs."""
    session = onnx_session(path)
    name = session.get_inputs()[0].name
    return largest_difference(lambda x: session.run(None, {name: x.numpy()})[0], model, resolution, seed)


def export_torchscript(model: torch.nn.Module, resolution: int, path: str | Path, seed: int = 0) -> float:
    """Write ``model`` as TorchScript (traced) and return the largest difference of the reloaded file's logits."""
    example = torch.rand(2, 3, resolution, resolution)
    with warnings.catch_warnings():  # torch.jit is deprecated (for torch.export) but TorchScript is asked for
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        try:
            with torch.no_grad():
                traced = torch.jit.trace(model, example)
            with atomic_path(path) as tmp:
                torch.jit.save(traced, str(tmp))
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"TorchScript cannot trace this network ({first_line(exc)})") from None
        loaded = torch.jit.load(str(path))
    return largest_difference(lambda x: loaded(x).numpy(), model, resolution, seed)


def measure_onnx(path: str | Path, threads: int = 1, batch_size: int = 1, min_run_time: float = 1.0):
    """onnxruntime's latency for ``path`` on this CPU (median and IQR of blocked runs, as PyTorch's is measured
    by nas-profile --latency), and the input resolution read from the model."""
    session = onnx_session(path, threads)
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
        raise UserInputError(f"{path}: input shape {shape}: expected (batch, 3, H, W) with a fixed H and W")
    check_measurement("cpu", threads, batch_size, int(shape[2]))  # the input batch's size, at the model's own
    return measure_session(session, (batch_size, *shape[1:]), threads, min_run_time), int(shape[2])
