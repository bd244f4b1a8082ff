"""Latency in onnxruntime, the runtime the deployed network runs in (``nas-export`` writes it as ONNX).

A layer of a table is exported with PyTorch's TorchScript-based ONNX exporter (0.027 s a layer here,
against 0.80 s for the torch.export one, for a table of about 1,500 layers); a whole network is exported exactly
as ``nas-export`` exports it (torch.export, optimised, dynamic batch), so that what a table is checked against
is the deployed file. Both run in an onnxruntime CPU session with every graph optimisation (BatchNorm folded
into the convolutions) and timed as PyTorch's latency is: warm-up, then the median and interquartile range of
blocked runs (``torch.utils.benchmark``).
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from nas.errors import UserInputError, first_line
from nas.latency.timing import Latency, blocked_latency


def onnx_session(model: str | Path | bytes, threads: int = 1) -> Any:
    """An onnxruntime CPU session for an ONNX file or its bytes (all graph optimisations, ``threads`` intra-op
    threads, one inter-op)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        source = model if isinstance(model, bytes) else str(model)
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - an unreadable or invalid model file
        name = "the ONNX model" if isinstance(model, bytes) else str(model)
        raise UserInputError(f"{name}: onnxruntime cannot load it ({first_line(exc)})") from None


def network_onnx(model: Any, example: Any, dynamic_batch: bool = True) -> bytes:
    """``model`` (eval mode) as ONNX through torch.export, optimised, as ``nas-export`` writes it (the batch
    dimension dynamic unless ``dynamic_batch`` is False)."""
    import torch

    shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _exporter_quiet():
        warnings.simplefilter("ignore", FutureWarning)  # torch.export's notices about its own internals
        program = torch.onnx.export(model.eval(), (example,), dynamo=True, input_names=["images"],
                                    output_names=["logits"], dynamic_shapes=shapes, optimize=True, verbose=False)
    return program.model_proto.SerializeToString()


@contextlib.contextmanager
def _exporter_quiet() -> Iterator[None]:
    """The exporter's warnings about ops of packages not installed ("torchvision is not installed. Skipping
    torchvision::nms", four lines per export) held back; the ``torch.onnx`` logger's level put back after."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def layer_onnx(module: Any, example: Any) -> bytes:
    """One layer (eval mode) as ONNX through the TorchScript-based exporter, at ``example``'s fixed shape."""
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's deprecation notice, once per layer
        torch.onnx.export(module.eval(), (example,), buffer, dynamo=False, input_names=["x"])
    return buffer.getvalue()


def measure_session(session: Any, batch_shape: tuple[int, ...], threads: int = 1, min_run_time: float = 0.2,
                    warmup: int = 3) -> Latency:
    """Latency of one ``session.run`` on a random float32 input of ``batch_shape``."""
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random(batch_shape, np.float32)}
    return blocked_latency(lambda: session.run(None, feed), threads, min_run_time, warmup)


def onnxruntime_timer(module: Any, input_shape: tuple[int, ...], threads: int = 1, batch_size: int = 1,
                      whole_network: bool = False) -> Callable[..., Latency]:
    """``module`` exported to ONNX once (a layer's way, or ``whole_network``: nas-export's) into an onnxruntime
    session on this CPU; returns what measures it at batch ``batch_size``: ``timer(min_run_time, warmup=3)``."""
    import torch

    example = torch.randn(batch_size, *input_shape)
    with torch.no_grad():
        model = network_onnx(module, example, dynamic_batch=False) if whole_network else layer_onnx(module, example)
    session = onnx_session(model, threads)
    return lambda min_run_time, warmup=3: measure_session(session, tuple(example.shape), threads, min_run_time,
                                                          warmup)
