"""Layer classes for the model builder: conv-BN-act, squeeze-and-excitation, MBConv and regular conv layers.

Semantics follow the reference TensorFlow EfficientNet/MnasNet code (and timm's port of it): BatchNorm with
eps 1e-3 and momentum 0.01, "same"-style symmetric padding of k // 2, SE sized from the block's input channels,
identity residual with stochastic depth only where the layer keeps its shape.
"""
from __future__ import annotations

import torch
from torch import nn

from search_spaces.spec import LayerSpec

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # PyTorch's convention for TensorFlow's decay of 0.99


def make_activation(name: str) -> nn.Module:
    """The activation module for a spec's ``activation`` field."""
    if name == "swish":
        return nn.SiLU(inplace=True)
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    raise ValueError(f"activation: unknown {name!r}")


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


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class ConvBnAct(nn.Sequential):
    """k x k convolution (no bias), BatchNorm, optional activation."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 activation: str | None = "swish") -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            batch_norm(cout),
        ]
        if activation is not None:
            layers.append(make_activation(activation))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global mean, 1x1 reduce, activation, 1x1 expand, sigmoid gate."""

    def __init__(self, channels: int, reduced: int, activation: str) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = make_activation(activation)
        self.expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.expand(self.act(self.reduce(scale)))
        return x * torch.sigmoid(scale)


def se_channels(in_channels: int, ratio: float) -> int:
    """Reduced SE width: relative to the block's input channels, as in the TensorFlow reference."""
    return max(1, int(in_channels * ratio))


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples with probability ``rate``, rescale the rest."""
    if rate <= 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


class MBConv(nn.Module):
    """Mobile inverted bottleneck: 1x1 expand (when expand > 1), depthwise k x k, SE, 1x1 linear project."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, se: float,
                 residual: bool, activation: str, drop_rate: float = 0.0) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = ConvBnAct(cin, mid, 1, activation=activation) if expand > 1 else nn.Identity()
        self.depthwise = ConvBnAct(mid, mid, kernel, stride, groups=mid, activation=activation)
        self.se = SqueezeExcite(mid, se_channels(cin, se), activation) if se > 0 else nn.Identity()
        self.project = ConvBnAct(mid, cout, 1, activation=None)
        self.residual = residual
        self.drop_rate = drop_rate if residual else 0.0

    @classmethod
    def build(cls, layer: LayerSpec, activation: str, drop_rate: float) -> "MBConv":
        return cls(layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.expand, layer.se,
                   layer.residual, activation, drop_rate)

    @staticmethod
    def count(layer: LayerSpec, size: int) -> tuple[int, int]:
        """(params, FLOPs) of the layer on a ``size`` x ``size`` input, exactly as fvcore counts it."""
        cin, mid, out_size = layer.in_channels, layer.in_channels * layer.expand, conv_output_size(
            size, layer.kernel, layer.stride)
        parts = [conv_bn_counts(mid, mid, layer.kernel, mid, out_size),
                 conv_bn_counts(mid, layer.out_channels, 1, 1, out_size)]
        if layer.expand > 1:
            parts.append(conv_bn_counts(cin, mid, 1, 1, size))
        if layer.se > 0:
            parts.append(se_counts(mid, se_channels(cin, layer.se)))
        return _add(*parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        if self.residual:
            out = drop_path(out, self.drop_rate, self.training) + x
        return out


class RegularConv(nn.Module):
    """MnasNet's regular convolution op: k x k conv, BN, activation, then optional SE."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, se: float, residual: bool,
                 activation: str, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.conv = ConvBnAct(cin, cout, kernel, stride, activation=activation)
        self.se = SqueezeExcite(cout, se_channels(cin, se), activation) if se > 0 else nn.Identity()
        self.residual = residual
        self.drop_rate = drop_rate if residual else 0.0

    @classmethod
    def build(cls, layer: LayerSpec, activation: str, drop_rate: float) -> "RegularConv":
        return cls(layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.se, layer.residual,
                   activation, drop_rate)

    @staticmethod
    def count(layer: LayerSpec, size: int) -> tuple[int, int]:
        """(params, FLOPs) of the layer on a ``size`` x ``size`` input, exactly as fvcore counts it."""
        out_size = conv_output_size(size, layer.kernel, layer.stride)
        parts = [conv_bn_counts(layer.in_channels, layer.out_channels, layer.kernel, 1, out_size)]
        if layer.se > 0:
            parts.append(se_counts(layer.out_channels, se_channels(layer.in_channels, layer.se)))
        return _add(*parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.conv(x))
        if self.residual:
            out = drop_path(out, self.drop_rate, self.training) + x
        return out


# The one table from a spec's ``op`` to its layer class: the model builder builds with ``build`` and the
# analytic counter counts with ``count``. A new op is a class here and a row in this table.
# the module class of each layer kind of the op table (search_spaces/ops.py): a new op is a row there and a class here
LAYER_TYPES: dict[str, type[MBConv] | type[RegularConv]] = {"mbconv": MBConv, "conv": RegularConv}
