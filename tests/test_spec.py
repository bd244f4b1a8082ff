import json
import re
import random

import pytest

from search_spaces import REFERENCES
from search_spaces.random_specs import random_spec, reference
from nas.files import save_spec
from search_spaces.spec import SPEC_FORMAT, ArchSpec, SpecError, load_spec, parse_block_string, spec_from_block_strings


def test_reference_files_load_and_round_trip(tmp_path):
    for path in sorted(REFERENCES.glob("*.json")):
        spec = load_spec(path)
        out = save_spec(spec, tmp_path / path.name)
        assert load_spec(out) == spec
        assert json.loads(out.read_text()) == spec.to_dict()
        assert spec.to_dict()["format"] == SPEC_FORMAT


def test_b0_strings_and_timm_arch_def(b0):
    assert b0.block_strings[1] == "r2_k3_s22_e6_i16_o24_se0.25"
    assert b0.timm_arch_def == [  # timm's efficientnet_b0 arch_def, written out by hand
        ["ds_r1_k3_s1_e1_c16_se0.25"], ["ir_r2_k3_s2_e6_c24_se0.25"], ["ir_r2_k5_s2_e6_c40_se0.25"],
        ["ir_r3_k3_s2_e6_c80_se0.25"], ["ir_r3_k5_s1_e6_c112_se0.25"], ["ir_r4_k5_s2_e6_c192_se0.25"],
        ["ir_r1_k3_s1_e6_c320_se0.25"]]
    assert reference("mnasnet_a1").timm_arch_def[0] == ["ds_r1_k3_s1_e1_c16_noskip"]


@pytest.mark.parametrize("text", ["r1_k3_s11_e1_i32_o16_se0.25", "r2_k5_s22_e6_i16_o24_noskip",
                                  "r3_k3_s11_e1_i24_o24_se0.25_noskip_conv", "r1_k7_s22_e3_i8_o8"])
def test_block_string_round_trip(text):
    assert parse_block_string(text).to_string() == text


def test_block_string_round_trip_random():
    rng = random.Random(0)
    for _ in range(200):
        spec = random_spec(rng)
        assert tuple(parse_block_string(s) for s in spec.block_strings) == spec.blocks
        assert spec_from_block_strings(spec.block_strings, name="random", resolution=spec.resolution,
                                       num_classes=spec.num_classes, head_channels=spec.head_channels,
                                       activation=spec.activation, drop_connect=spec.drop_connect,
                                       stem_stride=spec.stem_stride) == spec


@pytest.mark.parametrize("text, said", [("r1_k3_s12_e1_i32_o16", "unequal strides s12 are not supported"),
                                        ("x1_k3", "expected r<R>_k<K>"),
                                        ("r1_k3_s11_e1_i32_o16_foo", "unknown option 'foo'"),
                                        ("r1_k4_s11_e1_i3_o4", "kernel: 4 is not one of 1, 3, 5, 7, 9"),
                                        ("r1_k3_s11_e1_i32_o16_seX", "expected r<R>_k<K>")])
def test_bad_block_strings(text, said):
    with pytest.raises(SpecError, match=f"block string '{text}'.*{re.escape(said)}"):
        parse_block_string(text)


def test_conv_with_se_has_no_timm_equivalent():
    spec = spec_from_block_strings(["r1_k3_s11_e1_i32_o32_se0.25_conv"])
    assert spec.timm_arch_def is None
    assert spec_from_block_strings(["r1_k3_s11_e1_i32_o32_conv"]).timm_arch_def == [["cn_r1_k3_s1_c32_skip"]]


def _b0_dict():
    return reference("efficientnet_b0").to_dict()


@pytest.mark.parametrize("change, field", [
    (lambda d: d.update(format="nas-b0-spec/9"), "format"),
    (lambda d: d.pop("resolution"), "resolution: missing"),
    (lambda d: d["blocks"][2].update(kernel=4), "blocks[2].kernel: 4"),
    (lambda d: d["blocks"][1].update(stride=3), "blocks[1].stride: 3"),
    (lambda d: d["blocks"][3].update({"in": 48}), "blocks[3].in: 48"),
    (lambda d: d["blocks"][0].update(repeats=-1), "blocks[0].repeats: -1"),
    (lambda d: d["blocks"][0].update({"out": -16}), "blocks[0].out: -16"),
    (lambda d: d["blocks"][0].update(op="attention"), "blocks[0].op"),
    (lambda d: d["blocks"][0].update(se=1.5), "blocks[0].se"),
    (lambda d: d["blocks"][0].update(skip="yes"), "blocks[0].skip"),
    (lambda d: d["blocks"][0].pop("kernel"), "blocks[0].kernel: missing"),
    (lambda d: d["blocks"][0].update(colour=1), "blocks[0].colour: unknown"),
    (lambda d: d.update(activation="gelu"), "activation"),
    (lambda d: d.update(dropout=1.0), "dropout"),
    (lambda d: d.update(stem_channels=0), "stem_channels"),
    (lambda d: d.update(resolution="224"), "resolution"),
    (lambda d: d.update(blocks=[]), "blocks"),
    (lambda d: d.update(block_strings=["r1_k3_s11_e1_i32_o16"]), "block_strings"),
])
def test_validation_names_the_field(change, field):
    data = _b0_dict()
    change(data)
    if "block_strings" not in field:
        data.pop("block_strings", None)
        data.pop("timm_arch_def", None)
    with pytest.raises(SpecError, match=__import__("re").escape(field)):
        load_spec(data)


def test_load_errors(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(SpecError, match="expected a JSON object"):
        load_spec(bad)


def test_replace_validates(b0):
    assert b0.replace(resolution=240).resolution == 240
    with pytest.raises(SpecError, match="resolution: 0 is not a positive integer"):
        b0.replace(resolution=0)
    assert isinstance(b0, ArchSpec)


def test_notation_marks_each_reduction_and_a_stem_that_keeps_the_resolution(b0):
    assert b0.notation().split() == ["Dk3se·16x1", "M6k3se·24x2/2", "M6k5se·40x2/2", "M6k3se·80x3/2",
                                     "M6k5se·112x3", "M6k5se·192x4/2", "M6k3se·320x1"]
    kept = b0.replace(stem_stride=1)
    assert kept.notation().split()[0] == "stem/1" and kept.notation().split()[1:] == b0.notation().split()


def test_downsampling_is_the_product_of_the_stem_s_and_the_blocks_strides():
    from search_spaces.random_specs import reference

    b0 = reference("efficientnet_b0")
    assert b0.downsampling == 32
    assert b0.replace(stem_stride=1).downsampling == 16
    from dataclasses import replace

    kept = b0.replace(blocks=tuple(replace(block, stride=1) if i == 1 else block for i, block in enumerate(b0.blocks)))
    assert kept.downsampling == 16 and kept.replace(stem_stride=1).downsampling == 8
