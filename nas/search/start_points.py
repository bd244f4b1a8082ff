"""Where a search starts: known networks evaluated before the controller proposes anything (Ray Tune's
``points_to_evaluate``), each as its nearest architecture in the space.

``--start-from references`` starts from EfficientNet-B0, MnasNet-A1 and MobileNetV2; names of reference
networks and B0 spec files may be listed too. The controller is told their rewards like any other
candidate's, so it learns from good networks from its first update on, and the search's winner is never
one its proxy ranks below the best of them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from nas.errors import UserInputError
from search_spaces import REFERENCES
from search_spaces.mnasnet import MnasNetSpace
from search_spaces.space import SpaceError
from search_spaces.spec import SpecError, load_spec

ALL_REFERENCES = "references"  # the word for every shipped reference network


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


def resolve_start_points(start_from: Sequence[str], space: MnasNetSpace) -> list[tuple[str, list[int]]]:
    """(name, choices) of each start point: a reference network's name or a B0 spec file, placed at its
    nearest architecture in ``space``. UserInputError (one line) for an unknown name, an unreadable spec, or a
    network with another block count or strides than the space's skeleton."""
    known = reference_names()
    points: list[tuple[str, list[int]]] = []
    for item in expand_start_from(list(start_from)):
        path = Path(REFERENCES) / f"{item}.json" if item in known else Path(item)
        if item not in known and not path.is_file():
            raise UserInputError(f"--start-from {item}: neither a reference network ({', '.join(known)}, or "
                                 f"{ALL_REFERENCES} for all) nor a spec file")
        try:
            choices = space.nearest(load_spec(path))
        except (SpecError, SpaceError) as exc:
            raise UserInputError(f"--start-from {item}: {exc}") from None
        if all(choices != seen for _, seen in points):
            points.append((item, choices))
    return points


def start_point_names(start_from: Sequence[str], space: MnasNetSpace) -> dict[tuple[int, ...], str]:
    """Each start point's architecture (choices) -> its name, resolved once; empty when a start point's file is
    gone (nothing is then marked as one)."""
    try:
        return {tuple(choices): name for name, choices in resolve_start_points(start_from, space)}
    except UserInputError:
        return {}
