"""The op table: each kind of layer a spec's ``op`` names, and how it is written everywhere a block is written.

A kind knows its space names (``dsconv``, ``mbconv6``, ``conv``), its notation token (``D``, ``M6``, ``C``),
its EfficientNet block-string marker, its timm ``arch_def`` form, its latency-table key and its drawing
colour. A new op is one row here (a kind) and its module class in ``nas/network/blocks.py``'s ``LAYER_TYPES``;
``tests/test_ops.py`` checks that the two tables name the same kinds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


def se_channels(in_channels: int, ratio: float) -> int:
    """Reduced SE width: relative to the block's input channels, truncated, as in the TensorFlow reference."""
    return max(1, int(in_channels * ratio))


def _timm_widths(in_channels: int, expand: int, se: float) -> tuple[int, int]:
    """The expanded and squeeze widths timm's decoder gives an MBConv layer (its make_divisible and round)."""
    mid = in_channels
    if expand > 1:
        wanted = in_channels * expand
        mid = max(8, int(wanted + 4) // 8 * 8)
        mid += 8 if mid < 0.9 * wanted else 0
    return mid, (round(mid * se / expand) if se > 0 else 0)


@dataclass(frozen=True)
class MBConvKind:
    """MobileNetV2's inverted residual (expand 1: depthwise-separable): 1x1 expand, depthwise k x k, SE, 1x1
    project."""

    op: str = "mbconv"
    marker: str = ""  # EfficientNet's own grammar: no option marks it
    expands: bool = True  # takes any expansion ratio

    def name(self, expand: int) -> str:
        return "dsconv" if expand == 1 else f"mbconv{expand}"

    def expand_of(self, name: str) -> int | None:
        """The expansion ratio a space name stands for, or None when the name is not this kind's."""
        if name == "dsconv":
            return 1
        match = re.fullmatch(r"mbconv([1-9][0-9]?)", name)
        return int(match.group(1)) if match else None

    def token(self, expand: int) -> str:
        return "D" if expand == 1 else f"M{expand}"

    def timm(self, block: Any) -> str | None:
        """None where timm would build other widths: timm rounds an expanded width to a multiple of 8 and an
        SE width to nearest; EfficientNet and we keep ``in * expand`` and truncate ``in * se``."""
        ours = [(layer.in_channels * block.expand, se_channels(layer.in_channels, block.se) if block.se else 0)
                for layer in block.layers()]
        if ours != [_timm_widths(layer.in_channels, block.expand, block.se) for layer in block.layers()]:
            return None
        kind = "ds" if block.expand == 1 else "ir"
        text = f"{kind}_r{block.repeats}_k{block.kernel}_s{block.stride}_e{block.expand}_c{block.out_channels}"
        return text + (f"_se{block.se:g}" if block.se > 0 else "") + ("" if block.skip else "_noskip")

    def color(self, expand: int) -> str:
        return {1: "#cfe3c8", 3: "#c6dbef"}.get(expand, "#9ecae1")


@dataclass(frozen=True)
class ConvKind:
    """A regular k x k convolution (MnasNet's "conv"), with optional SE."""

    op: str = "conv"
    marker: str = "conv"
    expands: bool = False  # expand is always 1

    def name(self, expand: int) -> str:
        return "conv"

    def expand_of(self, name: str) -> int | None:
        return 1 if name == "conv" else None

    def token(self, expand: int) -> str:
        return "C"

    def timm(self, block: Any) -> str | None:
        if block.se > 0:  # timm's "cn" block has no squeeze-and-excitation
            return None
        return (f"cn_r{block.repeats}_k{block.kernel}_s{block.stride}_c{block.out_channels}"
                + ("_skip" if block.skip else ""))

    def color(self, expand: int) -> str:
        return "#f4d6a0"


LAYER_KINDS: dict[str, MBConvKind | ConvKind] = {kind.op: kind for kind in (MBConvKind(), ConvKind())}
MARKERS = {kind.marker: kind.op for kind in LAYER_KINDS.values() if kind.marker}


def kind_of(op: str) -> MBConvKind | ConvKind:
    """The kind a spec's ``op`` names (KeyError when none)."""
    return LAYER_KINDS[op]


def op_named(name: str) -> tuple[str, int] | None:
    """(spec op, expand ratio) of a space's op name (``conv``, ``dsconv``, ``mbconv3``, ``mbconv6``, any
    ``mbconvN``), or None when no kind knows the name."""
    for kind in LAYER_KINDS.values():
        expand = kind.expand_of(name)
        if expand is not None:
            return kind.op, expand
    return None


def op_name(op: str, expand: int) -> str:
    """The space's name of a layer kind at an expansion ratio (``dsconv``, ``mbconv6``, ``conv``)."""
    return kind_of(op).name(expand)
