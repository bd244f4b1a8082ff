"""Layer classes for the model builder: conv-BN-act, squeeze-and-excitation, MBConv and regular conv layers.

Semantics follow the reference TensorFlow EfficientNet/MnasNet code (and timm's port of it): BatchNorm with
eps 1e-3 and momentum 0.01, "same"-style symmetric padding of k // 2, SE sized from the block's input channels,
identity residual with stochastic depth only where the layer keeps its shape.
"""
from __future__ import annotations

import torch
from torch import nn

from nas.network.costs import se_channels
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.conv(x))
        if self.residual:
            out = drop_path(out, self.drop_rate, self.training) + x
        return out


# a spec's ``op`` -> its module, built with ``build`` (its cost: nas.network.costs.LAYER_COSTS, the same keys).
# A new op is a row of the op table (search_spaces/ops.py), a class here and its cost there
LAYER_TYPES: dict[str, type[MBConv] | type[RegularConv]] = {"mbconv": MBConv, "conv": RegularConv}
