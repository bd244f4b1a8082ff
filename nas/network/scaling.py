"""EfficientNet compound scaling of a B0 spec: width, depth and resolution, presets b0..b7, and the
coefficients α (depth), β (width), γ (resolution) with α·β²·γ² ≈ 2 at φ = 1."""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable
from dataclasses import replace

from nas.errors import UserInputError
from search_spaces import REFERENCES
from search_spaces.spec import MIN_RESOLUTION, ArchSpec, load_spec

# EfficientNet's published table: (width, depth, resolution, dropout)
PRESETS: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}
PRESET_BASE_RESOLUTION = 224  # the table's resolutions are for B0 at 224 px
PAPER_COEFFICIENTS = (1.2, 1.1, 1.15)  # α, β, γ found by the EfficientNet paper's grid search


class ScalingError(UserInputError):
    """Bad scaling coefficients or an unknown preset (a user error)."""


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's rounding: scale, round to a multiple of ``divisor``, never below 90% of the exact value."""
    exact = channels * width
    rounded = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * exact:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """EfficientNet's rounding of layer counts: ``ceil(depth * repeats)``."""
    return int(math.ceil(depth * repeats))


def scale_spec(spec: ArchSpec, width: float, depth: float, resolution: int,
               dropout: float | None = None, name: str | None = None) -> ArchSpec:
    """Scale a spec: channels (stem, blocks and head) by ``width``, layers by ``depth``, input ``resolution``.

    Drop-connect is kept; ``dropout`` replaces the classifier's dropout when given.
    """
    for label, value in (("width", width), ("depth", depth)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ScalingError(f"{label}: {value!r} must be a positive number")
    if not isinstance(resolution, int) or resolution < MIN_RESOLUTION:
        raise ScalingError(f"resolution: {resolution!r} must be an integer of at least {MIN_RESOLUTION}")
    widths = _widths(spec, width)
    blocks = tuple(replace(b, repeats=round_repeats(b.repeats, depth)) for b in widths.pop("blocks"))
    return spec.replace(name=name or spec.name, resolution=resolution, blocks=blocks, **widths,
                        dropout=spec.dropout if dropout is None else dropout, metrics={},
                        provenance={**spec.provenance, "scaled_from": spec.name, "width": width, "depth": depth,
                                    "resolution": resolution})


def widened(spec: ArchSpec, width: float) -> ArchSpec:
    """``spec`` with every channel count (stem, blocks, head) scaled by ``width`` with EfficientNet's rounding,
    nothing else changed."""
    return spec.replace(**_widths(spec, width))


def _widths(spec: ArchSpec, width: float) -> dict[str, Any]:
    """The channel fields of ``spec`` scaled by ``width`` (EfficientNet's rounding), as ``spec.replace`` takes
    them."""
    blocks = tuple(replace(b, in_channels=round_filters(b.in_channels, width),
                           out_channels=round_filters(b.out_channels, width)) for b in spec.blocks)
    return {"stem_channels": round_filters(spec.stem_channels, width),
            "head_channels": round_filters(spec.head_channels, width), "blocks": blocks}


# the factor a fitted network's widths may take by default (a space's fit_bounds): below x0.25 most of MnasNet's
# layers are at the 8-channel floor of the rounding (a network of 8-channel blocks), above x2 the space's widest
# blocks reach 800 channels; a network that needs a factor outside lands off the budget and the window screens it
FIT_BOUNDS = (0.25, 2.0)
FIT_STEP = 0.01  # the factor's grain: one hundredth, as the hand fix's widths have always been chosen


def analytic_flops(spec: ArchSpec) -> int:
    """The spec's FLOPs at its own resolution, counted from the spec alone (fvcore's totals, exactly)."""
    from nas.network.analytic import analytic_rows

    return sum(row.flops for row in analytic_rows(spec, spec.resolution, None))


def fit_width(spec: ArchSpec, budget_flops: float, bounds: tuple[float, float] = FIT_BOUNDS,
              step: float = FIT_STEP) -> tuple[ArchSpec, float]:
    """(``spec`` widened by the largest factor within ``bounds``, in steps of ``step``, whose FLOPs at the
    spec's resolution stay within ``budget_flops``; that factor). FLOPs grow with the factor (EfficientNet's
    rounding never narrows a wider channel count), so a bisection finds it in about 8 counts. When even the
    smallest factor is over the budget, the spec at the smallest factor (over the budget)."""
    low, high = (int(round(bound / step)) for bound in bounds)
    if analytic_flops(widened(spec, low * step)) > budget_flops:
        return widened(spec, low * step), low * step
    while low < high:  # the invariant: the factor low * step is within the budget
        middle = (low + high + 1) // 2
        if analytic_flops(widened(spec, middle * step)) <= budget_flops:
            low = middle
        else:
            high = middle - 1
    return widened(spec, low * step), round(low * step, 6)


def preset(spec: ArchSpec, name: str) -> ArchSpec:
    """Scale with the published table's row ``name`` (b0..b7). Its resolution is published for a 224 px B0: a
    baseline at another resolution is scaled by the same ratio (a 64 px baseline's B3: 64 x 300 / 224 = 86 px),
    so that a network for small images is not made to run on images several times their size."""
    if name not in PRESETS:
        raise ScalingError(f"preset: {name!r} is not one of {', '.join(PRESETS)}")
    width, depth, resolution, dropout = PRESETS[name]
    resolution = int(round(resolution * spec.resolution / PRESET_BASE_RESOLUTION))
    return scale_spec(spec, width, depth, resolution, dropout, name=f"{network_stem(spec.name)}-{name}")


def one_network_conflict(preset: bool, phi: bool, manual: tuple, coefficients: list[str],
                         spell: Callable[[str], str]) -> str | None:
    """What is wrong with the arguments that scale one network, or None: one of a preset, φ or width, depth and
    resolution (those three together), and α, β, γ only with φ (or a family). ``spell`` writes an argument's
    name as its user types it: ``--width`` for nas-scale, ``width=`` for the Python API."""
    manual_given = any(value is not None for value in manual)
    manual_names = f"{spell('width')}, {spell('depth')} and {spell('resolution')}"
    if preset + phi + manual_given > 1:
        return f"choose one of {spell('preset')}, {spell('phi')}, or {manual_names}"
    if manual_given and any(value is None for value in manual):
        return f"{manual_names} go together"
    if coefficients and (preset or manual_given):
        return (f"{spell(coefficients[0])} is used with {spell('phi')} or a family, not with "
                f"{spell('preset') if preset else manual_names}")
    return None


def compound(alpha: float, beta: float, gamma: float, phi: float) -> tuple[float, float, float]:
    """(depth α^φ, width β^φ, resolution factor γ^φ); multiply the base resolution by the last and round
    to the nearest integer (224 x 1.15 = 257.6 -> 258 px: the formula, not the published 240 of B1)."""
    for label, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not (math.isfinite(value) and value > 0):
            raise ScalingError(f"{label}: {value!r} must be a positive number")
    if not (math.isfinite(phi) and phi >= 0):
        raise ScalingError(f"phi: {phi!r} must be zero or more")
    return alpha ** phi, beta ** phi, gamma ** phi


def scale_compound(spec: ArchSpec, alpha: float, beta: float, gamma: float, phi: float,
                   dropout: float | None = None) -> ArchSpec:
    """Scale by the compound formula at ``phi``."""
    depth, width, factor = compound(alpha, beta, gamma, phi)
    return scale_spec(spec, width, depth, int(round(spec.resolution * factor)), dropout,
                      name=f"{network_stem(spec.name)}-phi{phi:g}")


MAX_GRID_POINTS = 500  # every point of the grid search trains a network


def coefficient_grid(step: float = 0.05, tolerance: float = 0.1, max_alpha: float = 1.5,
                     max_beta: float = 1.3, max_gamma: float = 1.3) -> list[tuple[float, float, float]]:
    """Candidates (α, β, γ) on a grid with α, β, γ >= 1 and |α·β²·γ² - 2| <= tolerance."""
    if step <= 0 or tolerance < 0:
        raise ScalingError("grid: step must be positive and tolerance zero or more")

    def axis(limit: float) -> list[float]:
        return [round(1 + i * step, 4) for i in range(int(round((limit - 1) / step)) + 1)]

    axes = [axis(max_alpha), axis(max_beta), axis(max_gamma)]
    if math.prod(map(len, axes)) > MAX_GRID_POINTS * 100:
        raise ScalingError(f"--grid-step {step:g}: too fine a grid ({math.prod(map(len, axes)):,} points to "
                           f"consider); use 0.01 or more")
    grid = [(a, b, g) for a, b, g in itertools.product(*axes) if abs(a * b * b * g * g - 2) <= tolerance]
    if not grid:
        raise ScalingError(f"grid: step {step:g} and tolerance {tolerance:g} leave no point with α·β²·γ² near 2; "
                           f"use a finer --grid-step or a larger --tolerance")
    if len(grid) > MAX_GRID_POINTS:
        raise ScalingError(f"grid: {len(grid)} points with α·β²·γ² within {tolerance:g} of 2, each a training (at "
                           f"most {MAX_GRID_POINTS}); use a larger --grid-step or a smaller --tolerance")
    return grid


def network_stem(name: str) -> str:
    """A network's name without its -b0..-b7 suffix: what scaled networks and their outputs are named after."""
    for suffix in PRESETS:
        if name.endswith(f"-{suffix}"):
            return name[: -len(suffix) - 1]
    return name


B0_REDUCTIONS = 5  # EfficientNet-B0 halves the size in its stem and four blocks: 32x
SIMPLE_FIX_WIDTHS = (0.11, 2.0)  # the width a simple fix of B0 may take to meet a budget


def b0_at_level(budget_flops: float, resolution: int, num_classes: int, downsampling: int,
                bounds: tuple[float, float] = SIMPLE_FIX_WIDTHS, label: str | None = None) -> ArchSpec | None:
    """EfficientNet-B0 shrinking its input ``downsampling`` times (32, 16, ... 1) instead of 32: its first
    reductions, the stem's first, kept at stride 1; at the widest width multiplier within ``bounds`` (steps of
    0.01, EfficientNet's rounding) whose FLOPs at ``resolution`` stay within ``budget_flops``. None when no
    width does, or ``downsampling`` is not a power of 2 up to 32. Named ``<label>-w<width>`` (``label``
    default ``b0-<downsampling>x``)."""
    kept = B0_REDUCTIONS - int(math.log2(downsampling)) if downsampling >= 1 else -1
    if not 0 <= kept <= B0_REDUCTIONS or 2 ** (B0_REDUCTIONS - kept) != downsampling:
        return None
    b0 = load_spec(REFERENCES / "efficientnet_b0.json").replace(num_classes=num_classes, resolution=resolution)
    blocks, left = list(b0.blocks), kept - 1  # the stem's reduction is the first kept
    for i, block in enumerate(blocks):
        if block.stride == 2 and left > 0:
            blocks[i], left = replace(block, stride=1), left - 1
    base = b0.replace(stem_stride=1 if kept else 2, blocks=tuple(blocks))
    spec, width = fit_width(base, budget_flops, bounds=bounds)
    if analytic_flops(spec) > budget_flops:
        return None
    return scale_spec(base, width, 1.0, resolution, name=f"{label or f'b0-{downsampling}x'}-w{width:.2f}")


def stem1_b0_within(budget_flops: float, resolution: int, num_classes: int) -> ArchSpec | None:
    """The obvious fix of EfficientNet-B0 for small images: its stem at stride 1 (16x downsampling, not 32x), at
    the widest width multiplier (at most 1, in steps of 0.01, EfficientNet's rounding) whose FLOPs at
    ``resolution`` stay within ``budget_flops``; None when no width above 0.1 does."""
    return b0_at_level(budget_flops, resolution, num_classes, 16, bounds=(0.11, 1.0), label="b0-stem1")
