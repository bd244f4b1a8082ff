import dataclasses
import json

import numpy as np
import pytest

from search_spaces.random_specs import reference
from nas.network.builder import build_model
from nas.network.counting import profile
from search_spaces.mnasnet import MnasNetConfig, MnasNetSpace, Skeleton, default_space, nearest_multiple
from search_spaces.space import CategoricalSpace, SpaceError


def test_categorical_space_basics():
    space = CategoricalSpace([("a", [1, 2, 3]), ("b", ["x", "y"]), ("c", [True])])
    assert space.names == ["a", "b", "c"] and space.sizes == [3, 2, 1] and space.size == 6
    rng = np.random.default_rng(0)
    samples = {tuple(space.sample(rng)) for _ in range(200)}
    assert len(samples) == 6
    assert space.describe([2, 1, 0]) == "a=3 b=y c=True"
    child = space.mutate([0, 0, 0], rng, num_mutations=1)
    assert sum(a != b for a, b in zip(child, [0, 0, 0])) == 1
    with pytest.raises(SpaceError, match="expected 3 choices"):
        space.validate([0, 0])
    with pytest.raises(SpaceError, match="b: choice 2 is out of range"):
        space.validate([0, 2, 0])
    with pytest.raises(SpaceError, match="not an integer"):
        space.validate([0, 1.5, 0])
    with pytest.raises(SpaceError, match="decision names must be unique"):
        CategoricalSpace([("a", [1]), ("a", [2])])


def test_default_space_shape_and_size():
    space = default_space()
    assert len(space) == 42 and space.num_blocks == 7
    assert space.size == 288 ** 7  # 4 ops x 2 kernels x 2 SE x 2 skip x 3 filters x 3 layer counts, 7 blocks
    assert space.names[:6] == ["b0.op", "b0.kernel", "b0.se", "b0.skip", "b0.filters", "b0.layers"]


def test_filter_rounding():
    assert [nearest_multiple(c * 0.75) for c in (16, 24, 32, 64, 96, 160, 320)] == [16, 16, 24, 48, 72, 120, 240]
    assert [nearest_multiple(c * 1.25) for c in (16, 24, 32, 64, 96, 160, 320)] == [24, 32, 40, 80, 120, 200, 400]
    assert nearest_multiple(3) == 8


def test_decode_encode_round_trip_random():
    space = default_space()
    rng = np.random.default_rng(0)
    for _ in range(300):
        choices = space.sample(rng)
        spec = space.decode(choices, resolution=int(rng.choice([32, 64, 224])), num_classes=10)
        again = space.encode(spec)
        assert space.decode(again, spec.resolution, 10) == spec
        assert space.contains(spec)


def test_decoded_specs_are_valid_and_build():
    space = default_space()
    rng = np.random.default_rng(1)
    import torch

    for _ in range(5):
        spec = space.decode(space.sample(rng), resolution=32, num_classes=10)
        model = build_model(spec).eval()
        with torch.no_grad():
            assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
        counted = profile(spec, method="analytic")
        assert counted == profile(spec, method="fvcore")  # the exact fvcore count of the built model
        assert counted["params"] == sum(p.numel() for p in model.parameters())
        assert [b.stride for b in spec.blocks] == [1, 2, 2, 2, 1, 2, 1]
        assert all(b.repeats >= 1 for b in spec.blocks)


def test_references_inside_or_outside():
    space = default_space()
    assert space.contains(reference("mobilenet_v2"))
    assert space.decode(space.encode(reference("mobilenet_v2"))).blocks == reference("mobilenet_v2").blocks
    for name in ("efficientnet_b0", "mnasnet_a1"):
        with pytest.raises(SpaceError, match="112 output filters"):
            space.encode(reference(name))
        assert not space.contains(reference(name))


def test_nearest_is_encode_inside_the_space_and_the_closest_point_outside():
    space = default_space()
    rng = np.random.default_rng(4)
    for _ in range(20):  # inside the space: its own architecture, chosen as encode chooses
        spec = space.decode(space.sample(rng))
        assert space.nearest(spec) == space.encode(spec)
        assert space.decode(space.nearest(spec)).blocks == spec.blocks
    b0 = reference("efficientnet_b0")
    near = space.decode(space.nearest(b0))
    # B0 differs from the space only in blocks 4 and 5 (112 and 192 filters; the space has 120 and 200)
    assert [b.out_channels for b in near.blocks] == [16, 24, 40, 80, 120, 200, 320]
    same = [(b.op, b.expand, b.kernel, b.se, b.skip, b.repeats, b.stride) for b in near.blocks]
    assert same == [(b.op, b.expand, b.kernel, b.se, b.skip, b.repeats, b.stride) for b in b0.blocks]
    a1 = space.decode(space.nearest(reference("mnasnet_a1")))
    assert [b.out_channels for b in a1.blocks] == [16, 24, 40, 80, 120, 160, 320]  # 112 -> 120
    assert not a1.blocks[0].skip and a1.blocks[2].expand == 3  # its no-skip separable block, its MBConv3


def test_nearest_rounds_each_decision_and_refuses_another_skeleton():
    space = default_space()
    b0 = reference("efficientnet_b0")
    blocks = list(b0.blocks)
    blocks[3] = dataclasses.replace(blocks[3], kernel=7, expand=4, se=0.1, repeats=9)  # none of these is a choice
    values = space.values(space.nearest(b0.replace(blocks=tuple(blocks))))
    assert (values["b3.kernel"], values["b3.op"], values["b3.se"], values["b3.layers"]) == (5, "mbconv3", 0.0, 1)
    with pytest.raises(SpaceError, match="6 blocks, the space has 7"):
        space.nearest(b0.replace(blocks=b0.blocks[:6]))
    strided = list(b0.blocks)
    strided[4] = dataclasses.replace(strided[4], stride=2)
    with pytest.raises(SpaceError, match="strides"):
        space.nearest(b0.replace(blocks=tuple(strided)))


def test_config_from_json(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"skeleton": {"channels": [16, 24], "layers": [1, 2], "strides": [1, 2],
                                             "stem": 16, "head": 64},
                                "ops": ["mbconv6"], "kernels": [3, 5, 7], "activation": "relu"}))
    space = MnasNetSpace(MnasNetConfig.from_json(path))
    assert len(space) == 12 and space.size == (1 * 3 * 2 * 2 * 3 * 3) ** 2
    spec = space.decode([0] * 12)
    assert spec.activation == "relu" and spec.head_channels == 64 and spec.blocks[0].expand == 6
    path.write_text(json.dumps({"ops": ["transformer"]}))
    with pytest.raises(SpaceError, match="transformer"):
        MnasNetConfig.from_json(path)
    with pytest.raises(SpaceError, match="no such space file"):
        MnasNetConfig.from_json(tmp_path / "none.json")
    with pytest.raises(SpaceError, match="channels, layers and strides need the same non-zero length"):
        Skeleton(channels=[16], layers=[1, 2], strides=[1])


def test_a_space_file_round_trips_with_its_fingerprint_and_names_what_is_wrong(tmp_path):
    from search_spaces.mnasnet import SPACE_FORMAT, mnasnet_paper_config, space_from_dict

    config = MnasNetConfig(kernels=[3, 5, 7])
    saved = config.to_file()
    assert saved["format"] == SPACE_FORMAT and saved["fingerprint"] == config.fingerprint() != MnasNetConfig().fingerprint()
    assert MnasNetConfig.from_dict(saved) == config
    assert space_from_dict(None).config == mnasnet_paper_config()  # a run from before the space was saved
    with pytest.raises(SpaceError, match="unknown field 'kernel'"):
        MnasNetConfig.from_dict({"kernel": [3]})
    with pytest.raises(SpaceError, match="does not match its fields"):
        MnasNetConfig.from_dict({**saved, "kernels": [3]})
    with pytest.raises(SpaceError, match="format 'nas-space/9'"):
        MnasNetConfig.from_dict({**saved, "format": "nas-space/9"})
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"kernels": [4]}))
    with pytest.raises(SpaceError, match="kernel: 4 is not one of"):
        MnasNetConfig.from_json(path)


def test_the_downsampling_space_searches_the_stem_and_each_reducing_stride():
    from search_spaces.spec import SPEC_FORMAT_STEM, SpecError, spec_from_dict

    space = MnasNetSpace(MnasNetConfig(reduction_strides=[2, 1]))
    assert len(space) == 42 + 5 and space.names[42:] == ["stem.stride", "b1.stride", "b2.stride", "b3.stride",
                                                         "b5.stride"]
    # the paper's space is unchanged: 42 decisions, the fingerprint its latency tables and runs were made with
    assert len(default_space()) == 42 and default_space().fingerprint == "a1d0d1126e59"
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(100):
        choices = space.sample(rng)
        spec = space.decode(choices, resolution=32)
        stem, strides = space.strides(choices)
        assert spec.stem_stride == stem and [b.stride for b in spec.blocks] == strides
        assert all(strides[b] == 1 for b in (0, 4, 6))  # blocks that never downsample keep stride 1
        assert space.decode(space.encode(spec), resolution=32) == spec
        seen.add((stem, *strides))
        again = spec_from_dict(json.loads(spec.to_json()))
        assert again == spec and again.stem_stride == stem
        assert spec.to_dict()["format"] == (SPEC_FORMAT_STEM if stem == 1 else "nas-b0-spec/1")
    assert len(seen) > 20  # the strides vary independently
    kept = space.decode([0] * 42 + [1] * 5)
    assert kept.stem_stride == 1 and all(b.stride == 1 for b in kept.blocks)
    with pytest.raises(SpaceError, match="stem has stride 1, the space allows \\[2\\]"):
        default_space().encode(kept)
    with pytest.raises(SpecError, match="stem_stride: only in"):
        spec_from_dict({**kept.to_dict(), "format": "nas-b0-spec/1"})
    with pytest.raises(SpaceError, match="reduction_strides"):
        MnasNetConfig(reduction_strides=[2, 3])


def test_the_overview_says_how_the_space_downsamples_and_how_big_it_is():
    from search_spaces.mnasnet import space_named

    paper, strided = space_named("mnasnet"), space_named("downsampling")
    assert paper.overview() == (f"32x downsampling, fixed; 42 decisions over 7 blocks, 1.64e+17 architectures "
                                f"(space {paper.fingerprint})")
    assert strided.overview().startswith("downsampling searched: ") and "47 decisions" in strided.overview()
