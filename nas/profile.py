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
from dataclasses import dataclass
from typing import Any, Mapping

from nas.blocks import se_channels
from nas.spec import MIN_RESOLUTION, ArchSpec, BlockSpec, load_spec

METHODS = ("fvcore", "analytic")


@dataclass
class Row:
    """One line of a profile: a part of the network, its output shape, params and FLOPs."""

    name: str
    channels: int
    size: int
    params: int = 0
    flops: int = 0


def _conv_size(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


class _Counter:
    """Accumulates params and FLOPs layer by layer, mirroring the builder in nas/model.py."""

    def __init__(self) -> None:
        self.params = 0
        self.flops = 0

    def conv_bn(self, cin: int, cout: int, kernel: int, groups: int, size_out: int) -> None:
        weights = kernel * kernel * (cin // groups) * cout
        self.params += weights + 2 * cout
        self.flops += weights * size_out * size_out + 2 * cout * size_out * size_out

    def se(self, channels: int, reduced: int) -> None:
        self.params += 2 * channels * reduced + reduced + channels
        self.flops += 2 * channels * reduced


def _block_counts(block: BlockSpec, size: int) -> tuple[int, int, int]:
    """(params, flops, output size) of one block whose input has spatial size ``size``."""
    count = _Counter()
    for layer in range(block.repeats):
        cin = block.in_channels if layer == 0 else block.out_channels
        stride = block.stride if layer == 0 else 1
        out_size = _conv_size(size, block.kernel, stride)
        if block.op == "conv":
            count.conv_bn(cin, block.out_channels, block.kernel, 1, out_size)
            if block.se > 0:
                count.se(block.out_channels, se_channels(cin, block.se))
        else:
            mid = cin * block.expand
            if block.expand > 1:
                count.conv_bn(cin, mid, 1, 1, size)
            count.conv_bn(mid, mid, block.kernel, mid, out_size)
            if block.se > 0:
                count.se(mid, se_channels(cin, block.se))
            count.conv_bn(mid, block.out_channels, 1, 1, out_size)
        size = out_size
    return count.params, count.flops, size


def analytic_rows(spec: ArchSpec, resolution: int, num_classes: int | None = None) -> list[Row]:
    """Per-part counts computed from the spec alone (no model is built)."""
    classes = num_classes or spec.num_classes
    size = _conv_size(resolution, 3, 2)
    stem = _Counter()
    stem.conv_bn(3, spec.stem_channels, 3, 1, size)
    rows = [Row("stem", spec.stem_channels, size, stem.params, stem.flops)]
    for i, block in enumerate(spec.blocks):
        params, flops, size = _block_counts(block, size)
        rows.append(Row(block.to_string(), block.out_channels, size, params, flops))
    head = _Counter()
    head.conv_bn(spec.blocks[-1].out_channels, spec.head_channels, 1, 1, size)
    head.flops += spec.head_channels * size * size  # adaptive average pool
    head.params += spec.head_channels * classes + classes
    head.flops += spec.head_channels * classes
    rows.append(Row("head+classifier", classes, 1, head.params, head.flops))
    return rows


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
    import torch

    from nas.model import build_model

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
        from nas.model import build_model

        model = build_model(spec, num_classes)
        analysis = _fvcore_analysis(model, resolution)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flops = int(analysis.total())
        return {"params": sum(p.numel() for p in model.parameters()), "flops": flops, "resolution": resolution}
    rows = profile_rows(spec, resolution, method, num_classes)
    return {"params": sum(r.params for r in rows), "flops": sum(r.flops for r in rows),
            "resolution": resolution}
