"""Build a ``torch.nn.Module`` from a B0 spec (cf. timm's EfficientNet builder)."""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from nas.network.analytic import check_parameters
from nas.network.blocks import LAYER_TYPES, ConvBnAct
from search_spaces.spec import ArchSpec, load_spec


class ArchNet(nn.Module):
    """stem conv 3x3 (stride ``spec.stem_stride``) -> blocks -> 1x1 head conv -> global average pool -> dropout -> linear."""

    def __init__(self, spec: ArchSpec, num_classes: int | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.num_classes = num_classes or spec.num_classes
        act = spec.activation
        self.stem = ConvBnAct(3, spec.stem_channels, 3, spec.stem_stride, activation=act)
        total, index = spec.num_layers, 0
        stages = []
        for block in spec.blocks:
            layers = []
            for layer in block.layers():
                drop = spec.drop_connect * index / total  # grows linearly with depth, as in the TF code
                layers.append(LAYER_TYPES[layer.op].build(layer, act, drop))
                index += 1
            stages.append(nn.Sequential(*layers))
        self.blocks = nn.Sequential(*stages)
        self.head = ConvBnAct(spec.blocks[-1].out_channels, spec.head_channels, 1, activation=act)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout)
        self.classifier = nn.Linear(spec.head_channels, self.num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.forward_features(x)).flatten(1)
        return self.classifier(self.dropout(x))


def init_weights(model: nn.Module) -> None:
    """TF EfficientNet init: conv normal(0, sqrt(2 / fan_out)), dense uniform(+-1/sqrt(out)), BN 1/0."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            fan_out = kh * kw * module.out_channels // module.groups
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            bound = 1.0 / math.sqrt(module.out_features)
            nn.init.uniform_(module.weight, -bound, bound)
            nn.init.zeros_(module.bias)


def build_model(spec: ArchSpec | Mapping[str, Any] | str, num_classes: int | None = None) -> ArchNet:
    """Build the network a spec describes; ``num_classes`` overrides the spec's classifier width. A network
    over MAX_PARAMS parameters is refused (SpecError) before any weight is allocated."""
    spec = load_spec(spec)
    check_parameters(spec, num_classes)
    return ArchNet(spec, num_classes)
