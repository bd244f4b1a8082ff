"""Parameter and FLOP counts from a spec alone, with no model built (nas.network.counting's convention, the
same totals as fvcore's), and the parameter bound every build checks first."""
from __future__ import annotations

from dataclasses import dataclass

from nas.network.costs import LAYER_COSTS, conv_bn_counts, conv_output_size
from search_spaces.spec import MIN_RESOLUTION, ArchSpec, BlockSpec, SpecError


@dataclass
class Row:
    """One line of a profile: a part of the network, its output shape, params and FLOPs."""

    name: str
    channels: int
    size: int
    params: int = 0
    flops: int = 0


def _block_counts(block: BlockSpec, size: int) -> tuple[int, int, int]:
    """(params, flops, output size) of one block whose input has spatial size ``size``."""
    params = flops = 0
    for layer in block.layers():
        layer_params, layer_flops = LAYER_COSTS[layer.op](layer, size)
        params, flops = params + layer_params, flops + layer_flops
        size = conv_output_size(size, layer.kernel, layer.stride)
    return params, flops, size


def analytic_rows(spec: ArchSpec, resolution: int, num_classes: int | None = None) -> list[Row]:
    """Per-part counts computed from the spec alone (no model is built)."""
    classes = num_classes or spec.num_classes
    size = conv_output_size(resolution, 3, spec.stem_stride)
    rows = [Row("stem", spec.stem_channels, size, *conv_bn_counts(3, spec.stem_channels, 3, 1, size))]
    for block in spec.blocks:
        params, flops, size = _block_counts(block, size)
        rows.append(Row(block.to_string(), block.out_channels, size, params, flops))
    params, flops = conv_bn_counts(spec.blocks[-1].out_channels, spec.head_channels, 1, 1, size)
    flops += spec.head_channels * size * size  # adaptive average pool
    params += spec.head_channels * classes + classes  # classifier
    flops += spec.head_channels * classes
    rows.append(Row("head+classifier", classes, 1, params, flops))
    return rows


MAX_PARAMS = 1_000_000_000  # 4 GB of float32 weights, 15x EfficientNet-B7's: past it, building one eats the machine


def check_parameters(spec: ArchSpec, num_classes: int | None = None) -> None:
    """Refuse, with one line, a network with more than MAX_PARAMS parameters (before any is allocated)."""
    refuse_parameters(spec, sum(r.params for r in analytic_rows(spec, max(spec.resolution, MIN_RESOLUTION),
                                                                num_classes)))


def refuse_parameters(spec: ArchSpec, params: int) -> None:
    """The bound of check_parameters on a count already made."""
    if params > MAX_PARAMS:
        raise SpecError(f"{spec.name} has {params / 1e9:,.1f}G parameters: too large to build here (at most "
                        f"{MAX_PARAMS / 1e9:g}G, {MAX_PARAMS * 4 / 2 ** 30:.1f} GiB of weights)")
