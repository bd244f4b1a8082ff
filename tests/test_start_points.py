"""The search's start points: reference networks, spec files, and B0 at each downsampling level (``levels``)."""
from __future__ import annotations

import pytest

from nas.errors import UserInputError
from nas.network.counting import profile
from nas.search.config import SearchConfig
from nas.search.start_points import LEVELS, Sizing, level_start_points, resolve_start_points
from search_spaces.mnasnet import default_space, space_named

B0_FLOPS_AT_32 = 8_751_136  # EfficientNet-B0 at 32 px, 10 classes


@pytest.mark.parametrize("resolution, target", [(32, B0_FLOPS_AT_32), (224, 400e6)])
def test_each_level_is_b0_at_that_downsampling_within_the_target(resolution, target):
    space = space_named("downsampling")
    points = level_start_points(space, Sizing(target, (0.5, 1.5), resolution, 10))
    specs = {name: space.decode(choices, resolution=resolution, num_classes=10) for name, choices in points}
    assert list(specs)[:3] == ["b0-32x", "b0-16x", "b0-8x"]  # B0's own level first, then the resolution kept
    for name, spec in specs.items():
        assert f"b0-{spec.downsampling}x" == name
        assert 0.5 * target <= profile(spec, method="analytic")["flops"] <= target
        assert [block.kernel for block in spec.blocks] == [3, 3, 5, 3, 5, 5, 3]  # B0's kernels and SE kept
        assert all(block.se == 0.25 for block in spec.blocks)


def test_a_level_with_nothing_inside_the_window_is_left_out():
    space = space_named("downsampling")
    assert level_start_points(space, Sizing(1e5, (0.5, 1.5), 32, 10)) == []  # far below any network


def test_levels_need_a_space_that_searches_the_downsampling_and_a_flops_target():
    with pytest.raises(UserInputError, match="does not search the downsampling"):
        resolve_start_points([LEVELS], default_space(), Sizing(B0_FLOPS_AT_32, (0.5, 1.5), 32, 10))
    with pytest.raises(UserInputError, match="needs a FLOPs target"):
        resolve_start_points([LEVELS], space_named("downsampling"), Sizing(None, (0.5, 1.5), 32, 10))


def test_levels_and_references_together_keep_each_architecture_once():
    space = space_named("downsampling")
    sizing = Sizing(B0_FLOPS_AT_32, (0.5, 1.5), 32, 10)
    points = resolve_start_points(["references", LEVELS], space, sizing)
    assert [name for name, _ in points][:3] == ["efficientnet_b0", "mnasnet_a1", "mobilenet_v2"]
    assert len({tuple(choices) for _, choices in points}) == len(points)


def test_a_search_starts_from_the_levels_only_when_asked():
    strided = space_named("downsampling").config.to_dict()
    assert SearchConfig.new(target_flops=9e6, out="x", space=strided).start_from == ()
    assert SearchConfig.new(target_flops=9e6, out="x", space=strided, start_from="levels").start_from == (LEVELS,)
