"""Where a search starts: known networks evaluated before the controller proposes anything (Ray Tune's
``points_to_evaluate``), each as its nearest architecture in the space.

``--start-from references`` starts from EfficientNet-B0, MnasNet-A1 and MobileNetV2; names of reference
networks and B0 spec files may be listed too. The controller is told their rewards like any other
candidate's, so it learns from good networks from its first update on, and the search's winner is never
one its proxy ranks below the best of them.

In a space that searches the downsampling, ``levels`` adds EfficientNet-B0's nearest at each
downsampling level (32x, 16x, 8x, ...), each the largest network of that level within the FLOPs target (which
reductions keep the resolution, one width, one layer delta, expand 6 or 3): a random draw keeps about half
the reductions and is mostly far over the target, so a search otherwise trains networks of one or two levels.
Not a default: on CIFAR-10 the predictor then stayed near the best-scoring of them (docs/search.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, product
from pathlib import Path
from typing import Sequence

from nas.errors import UserInputError
from nas.network.counting import profile
from search_spaces import REFERENCES
from search_spaces.mnasnet import MnasNetSpace
from search_spaces.space import SpaceError
from search_spaces.spec import SpecError, load_spec

ALL_REFERENCES = "references"  # the word for every shipped reference network
LEVELS = "levels"  # the word for B0 at each downsampling level, sized to the target (see the module's note)
LEVELS_BASE = "efficientnet_b0"


@dataclass(frozen=True)
class Sizing:
    """What the ``levels`` start points are sized to: the FLOPs target and window, at the network's resolution
    and class count (the counts the pre-screen makes)."""

    target_flops: float | None
    window: tuple[float, float]
    resolution: int
    num_classes: int


def reference_names() -> list[str]:
    """The shipped reference networks, by file name (efficientnet_b0, mnasnet_a1, mobilenet_v2)."""
    return sorted(path.stem for path in Path(REFERENCES).glob("*.json"))


def expand_start_from(items: Sequence[str]) -> tuple[str, ...]:
    """``items`` with ``references`` replaced by every reference name and duplicates dropped (order kept);
    ``none`` alone: no start points."""
    names: list[str] = []
    for item in items:
        for name in reference_names() if item == ALL_REFERENCES else [item]:
            if name not in names:
                names.append(name)
    return () if names == ["none"] else tuple(names)


def resolve_start_points(start_from: Sequence[str], space: MnasNetSpace,
                         sizing: Sizing | None = None) -> list[tuple[str, list[int]]]:
    """(name, choices) of each start point: a reference network's name or a B0 spec file, placed at its
    nearest architecture in ``space``, or the ``levels`` (sized by ``sizing``). UserInputError (one line) for an
    unknown name, an unreadable spec, a network with another block count or strides than the space's skeleton,
    or ``levels`` where they cannot be made."""
    points: list[tuple[str, list[int]]] = []
    for item in expand_start_from(list(start_from)):
        found = level_start_points(space, sizing) if item == LEVELS else [
            (item, _nearest_point(item, space, sizing.resolution if sizing else None))]
        points += [point for point in found if all(point[1] != seen for _, seen in points)]
    return points


def _nearest_point(item: str, space: MnasNetSpace, resolution: int | None = None) -> list[int]:
    """The choices of a reference network's name or a B0 spec file, at its nearest architecture in ``space``
    (in a space that searches the input size, at the size nearest ``resolution``, the search's stated one,
    rather than the spec's own)."""
    known = reference_names()
    path = Path(REFERENCES) / f"{item}.json" if item in known else Path(item)
    if item not in known and not path.is_file():
        raise UserInputError(f"--start-from {item}: neither a reference network ({', '.join(known)}, or "
                             f"{ALL_REFERENCES} for all) nor a spec file")
    try:
        spec = load_spec(path)
        return space.nearest(spec.replace(resolution=resolution) if resolution else spec)
    except (SpecError, SpaceError) as exc:
        raise UserInputError(f"--start-from {item}: {exc}") from None


def start_point_names(start_from: Sequence[str], space: MnasNetSpace,
                      sizing: Sizing | None = None) -> dict[tuple[int, ...], str]:
    """Each start point's architecture (choices) -> its name, resolved once; empty when a start point's file is
    gone (nothing is then marked as one)."""
    try:
        return {tuple(choices): name for name, choices in resolve_start_points(start_from, space, sizing)}
    except UserInputError:
        return {}


def level_start_points(space: MnasNetSpace, sizing: Sizing | None) -> list[tuple[str, list[int]]]:
    """EfficientNet-B0's nearest at each downsampling level the space can make (``b0-32x``, ``b0-16x``, ...): at
    each, the reductions kept at stride 1 and the uniform filter and layer choice that give the most FLOPs in
    the window and at most the target (the largest network of that level within budget). A level where
    nothing fits is left out."""
    if not space.searches_strides:
        raise UserInputError(f"--start-from {LEVELS}: the space does not search the downsampling "
                             f"(--space downsampling does)")
    if sizing is None or not sizing.target_flops:
        raise UserInputError(f"--start-from {LEVELS}: needs a FLOPs target (--target-flops)")
    base = space.nearest(load_spec(Path(REFERENCES) / f"{LEVELS_BASE}.json").replace(resolution=sizing.resolution))
    stride_index = space.config.reduction_strides.index
    positions = list(space.stride_decisions.values())  # the stem's first
    points = []
    for kept in range(len(positions) + 1):
        best: tuple[float, list[int]] | None = None
        for keep in combinations(positions, kept):
            choices = [stride_index(1 if i in keep else 2) if i in positions else c for i, c in enumerate(base)]
            sized = _sized(space, choices, sizing)
            if sized is not None and (best is None or sized[0] > best[0]):
                best = sized
        if best is not None:
            points.append((f"b0-{2 ** (len(positions) - kept)}x", best[1]))
    return points


def _sized(space: MnasNetSpace, choices: list[int], sizing: Sizing) -> tuple[float, list[int]] | None:
    """(FLOPs, choices) of ``choices`` with every block's filters and layers set to one uniform choice, and its
    MBConv expand-6 blocks at expand 3 or not: the one with the most FLOPs in [window's low x target, target];
    None when none is."""
    config, target = space.config, float(sizing.target_flops or 0)
    narrower = config.ops.index("mbconv3") if "mbconv3" in config.ops and "mbconv6" in config.ops else None
    best: tuple[float, list[int]] | None = None
    for filters, layers, cut in product(range(len(config.filter_multipliers)), range(len(config.layer_deltas)),
                                        (False, True) if narrower is not None else (False,)):
        trial = [filters if name.endswith(".filters") else layers if name.endswith(".layers")
                 else narrower if cut and name.endswith(".op") and config.ops[choice] == "mbconv6" else choice
                 for name, choice in zip(space.names, choices)]
        spec = space.decode(trial, resolution=sizing.resolution, num_classes=sizing.num_classes)
        flops = profile(spec, method="analytic")["flops"]
        if sizing.window[0] * target <= flops <= target and (best is None or flops > best[0]):
            best = (flops, trial)
    return best
