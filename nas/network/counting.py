"""Parameter and FLOP counts of a B0 spec, by fvcore or analytically from the spec alone.

Convention (the figure the toolkit reports everywhere): fvcore's default count in eval mode, where one fused
multiply-add is one flop. It counts convolutions and linear layers (bias adds not counted), batch norm (two
flops per element in eval mode) and adaptive average pooling (one per input element); element-wise adds and
multiplies, ``mean`` (inside SE), sigmoid and the activations are left uncounted. This comes out about 3% above
the papers' conv+linear count (EfficientNet-B0: 399M against 386M). Parameters are the trainable ones
(BatchNorm running statistics are buffers, not parameters).
"""
from __future__ import annotations

import logging
import warnings
from typing import Any, Mapping

import numpy as np

from nas.network.analytic import Row, analytic_rows, refuse_parameters
from nas.network.scaling import widened
from search_spaces.mnasnet import DECISIONS
from search_spaces.spec import MIN_RESOLUTION, ArchSpec, SpecError, load_spec

METHODS = ("fvcore", "analytic")


def _fvcore_analysis(model: Any, resolution: int) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # `import fvcore.nn` warns about a torch.jit deprecation
        from fvcore.nn import FlopCountAnalysis
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    model.eval()
    analysis = FlopCountAnalysis(model, torch.zeros(1, 3, resolution, resolution))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis


def fvcore_rows(spec: ArchSpec, resolution: int, num_classes: int | None = None) -> list[Row]:
    """Per-part counts from fvcore's FlopCountAnalysis on the built model in eval mode."""
    import torch  # torch, fvcore and the builder: loaded when a network is built, not for analytic counts

    from nas.network.builder import build_model

    model = build_model(spec, num_classes)
    analysis = _fvcore_analysis(model, resolution)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        by_module = analysis.by_module()

    def params(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    rows = []
    x = torch.zeros(1, 3, resolution, resolution)
    with torch.no_grad():
        x = model.stem(x)
        rows.append(Row("stem", x.shape[1], x.shape[2], params(model.stem), int(by_module["stem"])))
        for i, (block, stage) in enumerate(zip(spec.blocks, model.blocks)):
            x = stage(x)
            rows.append(Row(block.to_string(), x.shape[1], x.shape[2], params(stage),
                            int(by_module[f"blocks.{i}"])))
    head_params = params(model.head) + params(model.classifier)
    head_flops = sum(int(by_module[n]) for n in ("head", "pool", "classifier"))
    rows.append(Row("head+classifier", model.num_classes, 1, head_params, head_flops))
    total = int(analysis.total())
    if total != sum(r.flops for r in rows):  # every counted op lives in one of the parts above
        raise RuntimeError(f"fvcore total {total} differs from the sum of its parts")
    return rows


FVCORE_MAX_FLOPS = 200e9  # above this, fvcore's traced forward takes minutes and gigabytes: refused


def _flops_past_trace_bound(spec: ArchSpec, resolution: int, num_classes: int | None) -> float | None:
    """The network's analytic FLOPs when they are past FVCORE_MAX_FLOPS (too large to trace here), else None;
    from the same count, a network over MAX_PARAMS parameters is refused first."""
    rows = analytic_rows(spec, resolution, num_classes)
    refuse_parameters(spec, sum(r.params for r in rows))
    flops = sum(r.flops for r in rows)
    return flops if flops > FVCORE_MAX_FLOPS else None


def _check_fvcore_size(spec: ArchSpec, resolution: int, num_classes: int | None) -> None:
    """Refuse, with the way out, a network too large to count with fvcore in seconds."""
    flops = _flops_past_trace_bound(spec, resolution, num_classes)
    if flops is not None:
        raise SpecError(f"{spec.name} has {flops / 1e9:,.0f}G FLOPs at {resolution} px: too large to count with "
                        f"fvcore (at most {FVCORE_MAX_FLOPS / 1e9:.0f}G); use --method analytic, which gives "
                        f"exactly fvcore's totals")


def check_size(spec: ArchSpec, resolution: int, num_classes: int | None = None) -> None:
    """Refuse, with one line, a network too large to build or to run a forward pass of here (a count, a
    latency measurement, a training, an export's check): over MAX_PARAMS parameters, or over FVCORE_MAX_FLOPS
    FLOPs at ``resolution`` (the memory of a pass grows with them). Every command calls it before it builds."""
    _check_resolution(resolution)
    flops = _flops_past_trace_bound(spec, resolution, num_classes)
    if flops is not None:
        raise SpecError(f"{spec.name} has {flops / 1e9:,.0f}G FLOPs at {resolution} px: too large to run here "
                        f"(at most {FVCORE_MAX_FLOPS / 1e9:.0f}G); use a smaller --resolution")


def _check_resolution(resolution: object) -> None:
    if not isinstance(resolution, int) or resolution < MIN_RESOLUTION:
        raise ValueError(f"resolution: {resolution!r} is not an integer of at least {MIN_RESOLUTION}")


def profile_rows(spec: ArchSpec | Mapping[str, Any] | str, resolution: int | None = None,
                 method: str = "fvcore", num_classes: int | None = None) -> list[Row]:
    """Per-part rows (stem, each block, head+classifier) by the chosen method."""
    spec = load_spec(spec)
    resolution = resolution or spec.resolution
    _check_resolution(resolution)
    if method == "fvcore":
        _check_fvcore_size(spec, resolution, num_classes)
        return fvcore_rows(spec, resolution, num_classes)
    if method == "analytic":
        return analytic_rows(spec, resolution, num_classes)
    raise ValueError(f"method: {method!r} is not one of {', '.join(METHODS)}")


def profile(spec: ArchSpec | Mapping[str, Any] | str, resolution: int | None = None,
            method: str = "fvcore", num_classes: int | None = None) -> dict[str, int]:
    """``{"params", "flops", "resolution"}`` of a spec at ``resolution`` (default: the spec's own).

    ``method="fvcore"`` builds the model and counts with fvcore's FlopCountAnalysis (see the module docstring
    for the convention); ``method="analytic"`` gives exactly the same totals from the spec alone, thousands of
    times faster, for screening candidates.
    """
    spec = load_spec(spec)
    resolution = resolution or spec.resolution
    if method == "fvcore":  # totals only: no per-part breakdown, no extra forward pass for the shapes
        _check_resolution(resolution)
        _check_fvcore_size(spec, resolution, num_classes)
        from nas.network.builder import build_model

        model = build_model(spec, num_classes)
        analysis = _fvcore_analysis(model, resolution)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flops = int(analysis.total())
        return {"params": sum(p.numel() for p in model.parameters()), "flops": flops, "resolution": resolution}
    rows = profile_rows(spec, resolution, method, num_classes)
    return {"params": sum(r.params for r in rows), "flops": sum(r.flops for r in rows),
            "resolution": resolution}


def extreme_specs(space: Any, resolution: int, num_classes: int, samples: int = 500, seed: int = 0) -> list[ArchSpec]:
    """Networks near the edges of what ``space`` builds: every op applied to all blocks at the smallest and at
    the largest setting of the other decisions, plus ``samples`` random architectures."""
    rng = np.random.default_rng(seed)
    candidates = [space.sample(rng) for _ in range(samples)]
    per_block = len(DECISIONS)  # the blocks' own decisions, then the strides' and the input size's
    tail_sizes = space.sizes[per_block * space.num_blocks:]
    for op in range(space.sizes[0]):
        for extreme in ("small", "large"):  # each decision's choices run from the smaller network to the larger
            block = [op] + [0 if extreme == "small" else n - 1 for n in space.sizes[1:per_block]]
            tail = [0 if extreme == "small" else n - 1 for n in tail_sizes]
            candidates.append(block * space.num_blocks + tail)
    return [space.decode(c, resolution=resolution, num_classes=num_classes) for c in candidates]


def check_space_size(space: Any, resolution: int, num_classes: int) -> None:
    """Refuse, with one line, a space (a space file's) whose largest networks are too large to build or run
    at ``resolution`` (check_size), before any trial builds one."""
    for spec in extreme_specs(space, resolution, num_classes, samples=0):
        check_size(spec.replace(name="the space's largest network"), resolution, num_classes)


def space_flops_range(space: Any, resolution: int, num_classes: int, samples: int = 500,
                      seed: int = 0, widths: tuple[float, float] = (1.0, 1.0)) -> tuple[int, int]:
    """About the smallest and largest FLOPs (analytic, at ``resolution``) of the networks ``space`` builds: the
    extremes of :func:`extreme_specs` (tens of milliseconds; for a sanity warning), the smallest at the
    narrowest of ``widths`` and the largest at the widest (a space whose widths are fitted: the fit's bounds)."""
    specs = extreme_specs(space, resolution, num_classes, samples, seed)
    low = min(profile(widened(spec, widths[0]), method="analytic")["flops"] for spec in specs)
    high = max(profile(widened(spec, widths[1]), method="analytic")["flops"] for spec in specs)
    return low, high
