"""What each part of a network costs, from its spec alone (no torch): parameters and FLOPs in fvcore's
convention (a multiply-add is one FLOP; a batch norm costs 2 per output element), and the sizes convolutions
produce. The torch modules (nas.network.blocks) are built to these shapes; nas.network.analytic adds them up."""
from __future__ import annotations

from typing import Callable

from search_spaces.ops import se_channels
from search_spaces.spec import LayerSpec


def conv_output_size(size: int, kernel: int, stride: int) -> int:
    """Spatial size after a k x k convolution with padding k // 2 and ``stride``."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def conv_bn_counts(cin: int, cout: int, kernel: int, groups: int, size_out: int) -> tuple[int, int]:
    """(params, FLOPs) of a ConvBnAct in fvcore's convention: conv MACs plus 2 per BN output element."""
    weights = kernel * kernel * (cin // groups) * cout
    return weights + 2 * cout, weights * size_out * size_out + 2 * cout * size_out * size_out


def se_counts(channels: int, reduced: int) -> tuple[int, int]:
    """(params, FLOPs) of a SqueezeExcite: its two 1x1 convs with biases (the mean and gate are uncounted)."""
    return 2 * channels * reduced + reduced + channels, 2 * channels * reduced


def _add(*counts: tuple[int, int]) -> tuple[int, int]:
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def mbconv_counts(layer: LayerSpec, size: int) -> tuple[int, int]:
    """(params, FLOPs) of an MBConv layer on a ``size`` x ``size`` input, exactly as fvcore counts it."""
    cin, mid = layer.in_channels, layer.in_channels * layer.expand
    out_size = conv_output_size(size, layer.kernel, layer.stride)
    parts = [conv_bn_counts(mid, mid, layer.kernel, mid, out_size),
             conv_bn_counts(mid, layer.out_channels, 1, 1, out_size)]
    if layer.expand > 1:
        parts.append(conv_bn_counts(cin, mid, 1, 1, size))
    if layer.se > 0:
        parts.append(se_counts(mid, se_channels(cin, layer.se)))
    return _add(*parts)


def regular_conv_counts(layer: LayerSpec, size: int) -> tuple[int, int]:
    """(params, FLOPs) of a regular convolution layer on a ``size`` x ``size`` input, as fvcore counts it."""
    out_size = conv_output_size(size, layer.kernel, layer.stride)
    parts = [conv_bn_counts(layer.in_channels, layer.out_channels, layer.kernel, 1, out_size)]
    if layer.se > 0:
        parts.append(se_counts(layer.out_channels, se_channels(layer.in_channels, layer.se)))
    return _add(*parts)


# a spec's ``op`` -> its cost; nas.network.blocks.LAYER_TYPES has the module of each (the same keys: tested)
LAYER_COSTS: dict[str, Callable[[LayerSpec, int], tuple[int, int]]] = {"mbconv": mbconv_counts,
                                                                       "conv": regular_conv_counts}
