import random

import pytest

from search_spaces.random_specs import random_spec, reference
from nas.network.counting import profile, profile_rows

# Published by timm 1.0.31 with fvcore 0.1.5, no weights, 1000 classes, 224x224 (measured in a separate venv
# with torch 2.14.1 + torchvision; see tests/test_timm_live.py for the live comparison).
TIMM = {
    "efficientnet_b0": (5_288_548, 399_352_864),  # timm efficientnet_b0
    "mnasnet_a1": (3_887_038, 324_085_440),  # timm semnasnet_100
    "mobilenet_v2": (3_504_872, 314_193_216),  # timm mobilenetv2_100
}


@pytest.mark.parametrize("name", sorted(TIMM))
def test_references_match_timm(name):
    params, flops = TIMM[name]
    counts = profile(reference(name))
    assert counts["params"] == params
    assert abs(counts["flops"] - flops) <= 0.005 * flops
    assert counts["resolution"] == 224


@pytest.mark.parametrize("name", sorted(TIMM))
@pytest.mark.parametrize("resolution", [224, 96, 57])
def test_analytic_equals_fvcore_on_references(name, resolution):
    spec = reference(name)
    assert profile(spec, resolution, "analytic") == profile(spec, resolution, "fvcore")


@pytest.mark.parametrize("count", [30, pytest.param(200, marks=pytest.mark.slow)])
def test_analytic_equals_fvcore_on_random_specs(count):
    rng = random.Random(2024)
    resolutions = set()
    for _ in range(count):
        spec = random_spec(rng)
        resolution = rng.choice([32, 45, 64, 97, 128])
        resolutions.add(resolution)
        assert profile(spec, resolution, "analytic") == profile(spec, resolution, "fvcore"), spec.block_strings
    assert len(resolutions) >= 4


def test_rows_agree_part_by_part(b0):
    analytic, fvcore = profile_rows(b0, 224, "analytic"), profile_rows(b0, 224, "fvcore")
    assert analytic == fvcore
    assert [r.size for r in analytic[1:-1]] == [112, 56, 28, 14, 14, 7, 7]


def test_num_classes_and_bad_method(b0):
    assert profile(b0, num_classes=10, method="analytic")["params"] == 5_288_548 - 1281 * 990
    with pytest.raises(ValueError, match="method"):
        profile(b0, method="ptflops")
