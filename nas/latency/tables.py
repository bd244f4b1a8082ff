"""Inference latency: measured on a built network, and predicted from a per-device lookup table of layers.

MnasNet put the latency measured on the target device into the reward, because depthwise convolutions, SE
and channel counts cost very differently on different hardware than their FLOPs say. Measuring every
candidate on the deploy device is impractical inside a search, so (as in ProxylessNAS and once-for-all) the
device's cost of every layer configuration the search space can produce is measured once, into a table, and
a network's latency is predicted as the sum of its layers' entries: stem, every layer of every block, head
(1x1 conv, pooling and classifier).

Measurements run in eval mode at batch ``batch_size``, in one of two runtimes: PyTorch eager under
``torch.inference_mode`` (the default), or onnxruntime on the CPU (``runtime="onnxruntime"``: each layer
exported to ONNX, nas.latency.onnx_runtime), the runtime of the file ``nas-export`` writes. Either way,
``torch.utils.benchmark`` times warm-up and blocked runs (median and interquartile range; CUDA is
synchronised by the timer). A table is a versioned JSON file with the device and runtime it was measured on;
a user builds it on the machine they deploy to with ``nas-latency-table`` and copies it back.
"""
from __future__ import annotations

import itertools
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from nas.timings import usable_cpus
from nas.errors import UserInputError
from nas.files import atomic_write
from nas.latency.onnx_runtime import onnxruntime_timer
from nas.latency.timing import Latency, blocked_latency
from nas.network.costs import conv_output_size
from search_spaces.mnasnet import DECISIONS
from search_spaces.ops import kind_of
from search_spaces.spec import ArchSpec, LayerSpec

TABLE_FORMAT = "nas-latency-table/1"
DEVICES = ("cpu", "cuda")
RUNTIMES = ("torch", "onnxruntime")  # PyTorch eager; onnxruntime's CPU execution provider


class LatencyError(UserInputError):
    """A table that cannot serve a request: malformed, another version, space or resolution, a missing layer."""


# --------------------------------------------------------------------------------------------- devices
def check_device(device: str, runtime: str = "torch") -> None:
    """One-line error for a device (and runtime) this machine cannot measure on."""
    import torch

    if device not in DEVICES:
        raise UserInputError(f"--device {device!r}: expected cpu or cuda")
    if runtime not in RUNTIMES:
        raise UserInputError(f"--runtime {runtime!r}: expected torch or onnxruntime")
    if runtime == "onnxruntime" and device != "cpu":
        raise UserInputError("--runtime onnxruntime: measured on the CPU (onnxruntime's CPU execution provider); "
                             "leave out --device cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserInputError("--device cuda: no CUDA device is available here")


MAX_INPUT_BYTES = 2 * 2 ** 30  # one batch of float32 input; the activations of a network are several times it


def check_measurement(device: str, threads: int, batch_size: int, resolution: int, runtime: str = "torch") -> None:
    """One-line errors for a measurement that cannot mean anything here: a device (or runtime) this machine
    lacks, more threads than it has CPUs (they would time-share), or an input batch too large to hold."""
    check_device(device, runtime)
    cpus = usable_cpus()
    if device == "cpu" and threads > cpus:
        raise UserInputError(f"--threads {threads}: this machine has {cpus} CPUs")
    size = batch_size * 3 * resolution * resolution * 4
    if size > MAX_INPUT_BYTES:
        raise UserInputError(f"--batch-size {batch_size} at {resolution}px: one input batch takes "
                             f"{size / 2 ** 30:.1f} GiB (at most {MAX_INPUT_BYTES // 2 ** 30} GiB)")


def describe_device(device: str, threads: int, batch_size: int, runtime: str = "torch") -> dict[str, Any]:
    """What a measurement depends on: the processor (or GPU), threads, batch size and torch's version; in
    onnxruntime, the runtime and its version too (a PyTorch eager table has no ``runtime`` key)."""
    import torch

    if device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    described = {"kind": device, "name": name, "threads": threads, "batch_size": batch_size,
                 "torch": torch.__version__}
    if runtime != "torch":
        import onnxruntime

        described.update(runtime=runtime, onnxruntime=onnxruntime.__version__)
    return described


def runtime_of(device: dict[str, Any]) -> str:
    """The runtime a table's device description was measured in (torch when it does not say)."""
    return str(device.get("runtime", "torch"))


# --------------------------------------------------------------------------------------------- measuring
def measure(module: Any, input_shape: tuple[int, ...], device: str = "cpu", threads: int = 1,
            batch_size: int = 1, min_run_time: float = 0.2, warmup: int = 3, runtime: str = "torch",
            whole_network: bool = False) -> Latency:
    """Latency of ``module`` (eval mode, no autograd) on a random input of ``(batch_size, *input_shape)``, in
    PyTorch eager or in onnxruntime (``whole_network``: exported as nas-export exports a network)."""
    if runtime == "onnxruntime":
        return onnxruntime_timer(module, input_shape, threads, batch_size, whole_network)(min_run_time, warmup)
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        module = module.to(device).eval()
        x = torch.randn(batch_size, *input_shape, device=device)
        with torch.inference_mode():
            return blocked_latency(lambda: module(x), threads, min_run_time, warmup)
    finally:
        torch.set_num_threads(previous)


def measure_spec(spec: ArchSpec, device: str = "cpu", threads: int = 1, batch_size: int = 1,
                 min_run_time: float = 1.0, runtime: str = "torch") -> Latency:
    """Measured latency of the whole network ``spec`` describes, at its resolution (in onnxruntime: the ONNX
    file nas-export would write)."""
    from nas.network.builder import build_model

    return measure(build_model(spec), (3, spec.resolution, spec.resolution), device, threads, batch_size,
                   min_run_time, runtime=runtime, whole_network=True)


def measure_networks(specs: list[ArchSpec], device: str = "cpu", threads: int = 1, batch_size: int = 1,
                     rounds: int = 3, min_run_time: float = 0.3, runtime: str = "torch") -> list[list[float]]:
    """Each network's ``rounds`` latencies in ms, measured in interleaved rounds over all of them, so that a
    slow spell of the machine is shared out rather than landing on one network."""
    timers = [network_timer(spec, device, threads, batch_size, runtime) for spec in specs]
    runs: list[list[float]] = [[] for _ in specs]
    for _ in range(rounds):
        for i, timer in enumerate(timers):
            runs[i].append(timer(min_run_time).median_ms)
    return runs


def network_timer(spec: ArchSpec, device: str = "cpu", threads: int = 1, batch_size: int = 1,
                  runtime: str = "torch") -> Callable[[float], Latency]:
    """A function that measures ``spec``'s whole network (for at least the seconds it is given) as
    :func:`measure_spec` does; in onnxruntime the network is exported once, not at every measurement."""
    if runtime != "onnxruntime":
        return lambda min_run_time: measure_spec(spec, device, threads, batch_size, min_run_time, runtime)
    from nas.network.builder import build_model

    return onnxruntime_timer(build_model(spec), (3, spec.resolution, spec.resolution), threads, batch_size,
                             whole_network=True)


# --------------------------------------------------------------------------------------------- the parts of a network
@dataclass(frozen=True)
class Part:
    """One entry of a table: a key, the input it takes, and how to build it."""

    key: str
    input_shape: tuple[int, int, int]
    build: Callable[[], Any]


def _layer_key(layer: LayerSpec, size: int, activation: str) -> str:
    expand = f"_e{layer.expand}" if kind_of(layer.op).expands else ""
    return (f"{layer.op}{expand}_k{layer.kernel}_s{layer.stride}_i{layer.in_channels}_o{layer.out_channels}"
            f"_se{layer.se:g}{'_res' if layer.residual else ''}_{activation}@{size}")


def network_parts(spec: ArchSpec) -> Iterator[Part]:
    """The parts whose latencies add up to the network's: stem, each layer, head with pooling and classifier."""
    from torch import nn

    from nas.network.blocks import LAYER_TYPES, ConvBnAct

    act, size = spec.activation, spec.resolution
    stride = spec.stem_stride
    yield Part(f"stem_o{spec.stem_channels}{'_s1' if stride == 1 else ''}_{act}@{size}", (3, size, size),
               lambda: ConvBnAct(3, spec.stem_channels, 3, stride, activation=act))
    size = conv_output_size(size, 3, stride)
    for block in spec.blocks:
        for layer in block.layers():
            yield Part(_layer_key(layer, size, act), (layer.in_channels, size, size),
                       lambda layer=layer: LAYER_TYPES[layer.op].build(layer, act, 0.0))
            size = conv_output_size(size, layer.kernel, layer.stride)
    cin, head, classes = spec.blocks[-1].out_channels, spec.head_channels, spec.num_classes
    yield Part(f"head_i{cin}_o{head}_c{classes}_{act}@{size}", (cin, size, size),
               lambda: nn.Sequential(ConvBnAct(cin, head, 1, activation=act), nn.AdaptiveAvgPool2d(1),
                                     nn.Flatten(), nn.Linear(head, classes)))


def space_parts(space: Any, resolution: int, num_classes: int) -> list[Part]:
    """Every distinct part that networks of ``space`` (an MnasNetSpace) can contain at ``resolution``.

    Block b's layers depend on its own choices, on block b-1's output filters and on its input's size only, so
    it suffices to vary those, with every other decision at its first choice; the layer-count choice that gives
    the most layers brings in the repeated (stride 1, in = out) layer as well as the first. Where strides are
    searched, the input's size depends only on how many earlier reductions kept the resolution (a stride-2
    conv halves a size rounding up, in any order), so one variant per count covers every size.
    """
    sizes = space.sizes
    per_block, filters = len(DECISIONS), DECISIONS.index("filters")
    parts: dict[str, Part] = {}
    for b in range(space.num_blocks):
        axes = list(range(b * per_block, (b + 1) * per_block))
        if b > 0:
            axes.append((b - 1) * per_block + filters)
        own, earlier = _stride_axes(space, b)
        for base in _reduction_variants(space, earlier):
            for combination in itertools.product(*(range(sizes[i]) for i in axes + own)):
                choices = list(base)
                for axis, value in zip(axes + own, combination):
                    choices[axis] = value
                spec = space.decode(choices, resolution=resolution, num_classes=num_classes)
                for part in network_parts(spec):
                    parts.setdefault(part.key, part)
    return list(parts.values())


def _stride_axes(space: Any, block: int) -> tuple[list[int], list[int]]:
    """The stride decisions (indices) of ``block`` itself and of the stem and reducing blocks before it."""
    axes = space.stride_decisions
    return ([axes[block]] if block in axes else []), [axes[b] for b in axes if b < block]


def _reduction_variants(space: Any, earlier: list[int]) -> list[list[int]]:
    """Choice vectors (first choices but for ``earlier``) in which 0, 1, ... of the ``earlier`` stride
    decisions keep the resolution: one per input size a block can see."""
    base = [0] * len(space.sizes)
    if not earlier:
        return [base]
    strides = space.config.reduction_strides
    keep, halve = strides.index(1), strides.index(2)
    return [[keep if axis in earlier[:count] else (halve if axis in earlier else value)
             for axis, value in enumerate(base)] for count in range(len(earlier) + 1)]


# --------------------------------------------------------------------------------------------- tables
def space_fingerprint(space: Any) -> str:
    """A short hash of a space's configuration: a table serves only the space it was built for."""
    return space.config.fingerprint()


@dataclass
class LatencyTable:
    """Measured latency (ms) of parts, for one device, space, resolution and class count."""

    device: dict[str, Any]
    space: str
    resolution: int
    num_classes: int
    entries: dict[str, dict[str, float]]
    seconds: float = 0.0
    scale: float = 1.0  # measured / summed latency of whole networks (calibrate): what parts alone miss

    def predict(self, spec: ArchSpec) -> float:
        """Predicted latency in ms of ``spec``: the sum of its parts' entries times the calibration ``scale``."""
        return self.summed(spec) * self.scale

    def summed(self, spec: ArchSpec) -> float:
        """The sum of ``spec``'s parts' entries in ms (the classifier at the table's class count)."""
        if spec.resolution != self.resolution:
            raise LatencyError(f"latency table: built for {self.resolution}px, the network is at "
                               f"{spec.resolution}px; build a table at that resolution")
        total = 0.0
        for part in network_parts(spec.replace(num_classes=self.num_classes)):
            entry = self.entries.get(part.key)
            if entry is None:
                raise LatencyError(f"latency table: no entry for layer {part.key} of {spec.name} (the table "
                                   f"covers its space's layers; extend it on the device it was measured on)")
            total += entry["median_ms"]
        return total

    def calibrate(self, specs: list[ArchSpec], rounds: int = 2, min_run_time: float = 0.3) -> None:
        """Set ``scale`` to the median ratio of measured whole-network latency to the sum of parts, over
        ``specs`` measured here (the table's device) in interleaved rounds. Run alone, a layer misses what
        running inside a network costs or saves (thread-pool wake-ups, caches): at 2 CPU threads the sums
        came out about 14% low, at 1 thread about right."""
        device = self.device
        measured = measure_networks([spec.replace(num_classes=self.num_classes) for spec in specs],
                                    device["kind"], device["threads"], device["batch_size"], rounds, min_run_time,
                                    runtime_of(device))
        self.scale = float(np.median([np.median(runs) / self.summed(spec) for runs, spec in zip(measured, specs)]))

    def missing(self, specs: Iterable[ArchSpec]) -> list[Part]:
        """The parts of ``specs`` that the table has no entry for."""
        out: dict[str, Part] = {}
        for spec in specs:
            for part in network_parts(spec.replace(num_classes=self.num_classes)):
                if part.key not in self.entries:
                    out.setdefault(part.key, part)
        return list(out.values())

    def matches(self, device: dict[str, Any]) -> bool:
        """Whether this table was measured on ``device`` (same processor, threads, batch, torch and runtime)."""
        return runtime_of(self.device) == runtime_of(device) and all(self.device.get(k) == v
                                                                     for k, v in device.items())

    def fill(self, parts: Iterable[Part], min_run_time: float = 0.05,
             progress: Callable[[int, int], None] | None = None) -> None:
        """Measure ``parts`` on this machine (which must be the table's device) and add them."""
        parts = list(parts)
        started = time.perf_counter()
        for index, part in enumerate(parts):
            latency = measure(part.build(), part.input_shape, self.device["kind"], self.device["threads"],
                              self.device["batch_size"], min_run_time, runtime=runtime_of(self.device))
            self.entries[part.key] = latency.to_dict()
            if progress is not None:
                progress(index + 1, len(parts))
        self.seconds += time.perf_counter() - started

    def to_dict(self) -> dict[str, Any]:
        return {"format": TABLE_FORMAT, "device": self.device, "space": self.space, "resolution": self.resolution,
                "num_classes": self.num_classes, "seconds": round(self.seconds, 1), "scale": round(self.scale, 5),
                "entries": dict(sorted(self.entries.items()))}

    def save(self, path: str | Path) -> None:
        atomic_write(Path(path), json.dumps(self.to_dict(), indent=1) + "\n")


def load_table(path: str | Path, space: Any | None = None) -> LatencyTable:
    """Read a table; one-line errors for a missing, malformed or wrong-version file or another space."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LatencyError(f"latency table {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LatencyError(f"latency table {path}: not a readable JSON file ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise LatencyError(f"latency table {path}: format {found!r}, expected {TABLE_FORMAT!r}")
    try:
        table = LatencyTable(dict(data["device"]), str(data["space"]), int(data["resolution"]),
                             int(data["num_classes"]), {str(k): {"median_ms": float(v["median_ms"]),
                                                                 "iqr_ms": float(v.get("iqr_ms", 0.0))}
                                                        for k, v in data["entries"].items()},
                             float(data.get("seconds", 0.0)), float(data.get("scale", 1.0)))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LatencyError(f"latency table {path}: malformed ({type(exc).__name__}: {exc})") from None
    if any(not 0 < v["median_ms"] < math.inf for v in table.entries.values()) or not 0 < table.scale < 100:
        raise LatencyError(f"latency table {path}: an entry is not a positive, finite time")
    if space is not None and table.space != space_fingerprint(space):
        raise LatencyError(f"latency table {path}: built for another search space ({table.space}, this one is "
                           f"{space_fingerprint(space)})")
    return table


def build_table(space: Any, resolution: int, num_classes: int, device: str = "cpu", threads: int = 1,
                batch_size: int = 1, min_run_time: float = 0.05,
                progress: Callable[[int, int], None] | None = None, calibration_networks: int = 8,
                runtime: str = "torch") -> LatencyTable:
    """Measure every part ``space`` can produce at ``resolution`` on this machine's ``device`` in ``runtime``,
    then calibrate the sum of parts on ``calibration_networks`` random networks of the space (0: none)."""
    check_device(device, runtime)
    table = LatencyTable(describe_device(device, threads, batch_size, runtime), space_fingerprint(space),
                         resolution, num_classes, {})
    table.fill(space_parts(space, resolution, num_classes), min_run_time, progress)
    if calibration_networks:
        started = time.perf_counter()
        table.calibrate(calibration_specs(space, resolution, num_classes, calibration_networks))
        table.seconds += time.perf_counter() - started
    return table


def calibration_specs(space: Any, resolution: int, num_classes: int, count: int, seed: int = 12345) -> list[ArchSpec]:
    """``count`` random networks of the space (a seed of their own, apart from any validation set)."""
    rng = np.random.default_rng(seed)
    return [space.decode(space.sample(rng), resolution=resolution, num_classes=num_classes,
                         name=f"calibration-{i}") for i in range(count)]


def parse_latency(text: str) -> float:
    """``20ms``, ``20``, ``0.02s`` or ``1500us`` -> milliseconds (positive)."""
    value = text.strip().lower()
    scale = 1.0
    for suffix, factor in (("ms", 1.0), ("us", 1e-3), ("s", 1e3)):
        if value.endswith(suffix):
            value, scale = value[: -len(suffix)], factor
            break
    try:
        ms = float(value) * scale
    except ValueError:
        raise ValueError(f"{text!r} is not a latency (e.g. 20ms, 0.02s)") from None
    if not 0 < ms < float("inf"):
        raise ValueError(f"{text!r}: a latency target must be positive and finite")
    return ms
