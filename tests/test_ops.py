"""The op table (search_spaces/ops.py): one row per layer kind, seen by every form a block is written in."""
import pytest

from nas.latency.tables import _layer_key
from nas.network.blocks import LAYER_TYPES
from nas.network.costs import LAYER_COSTS
from nas.report.diagram import block_op
from search_spaces.mnasnet import MNASNET_OPS, MnasNetConfig, MnasNetSpace
from search_spaces.ops import LAYER_KINDS, op_name, op_named
from search_spaces.space import SpaceError
from search_spaces.spec import OPS, BlockSpec, parse_block_string


def test_the_network_builds_every_kind_of_the_table_and_the_spec_accepts_them():
    assert set(LAYER_TYPES) == set(LAYER_COSTS) == set(LAYER_KINDS) == set(OPS)  # built, costed, written


@pytest.mark.parametrize("name, op, expand, token, timm", [
    ("conv", "conv", 1, "C", "cn_r2_k3_s2_c24"),
    ("dsconv", "mbconv", 1, "D", "ds_r2_k3_s2_e1_c24_noskip"),
    ("mbconv3", "mbconv", 3, "M3", "ir_r2_k3_s2_e3_c24_noskip"),
    ("mbconv6", "mbconv", 6, "M6", "ir_r2_k3_s2_e6_c24_noskip"),
    ("mbconv4", "mbconv", 4, "M4", "ir_r2_k3_s2_e4_c24_noskip"),
])
def test_each_op_is_named_written_and_drawn_from_its_row(name, op, expand, token, timm):
    assert op_named(name) == (op, expand) and op_name(op, expand) == name
    block = BlockSpec(op=op, repeats=2, kernel=3, stride=2, expand=expand, in_channels=16, out_channels=24,
                      skip=False)
    assert block.notation() == f"{token}k3n·24x2/2" and block.to_timm() == timm
    assert parse_block_string(block.to_string()) == block and block_op(block) == name
    layer = block.layers()[0]
    assert _layer_key(layer, 32, "swish").startswith(f"{op}_e{expand}_k3" if op == "mbconv" else f"{op}_k3")


def test_a_space_may_offer_another_expansion_and_refuses_an_unknown_op():
    space = MnasNetSpace(MnasNetConfig(ops=[*MNASNET_OPS, "mbconv4"]))
    choices = [0] * len(space)
    choices[0] = 4  # block 0's op: mbconv4
    block = space.decode(choices).blocks[0]
    assert (block.op, block.expand) == ("mbconv", 4) and space.encode(space.decode(choices)) == choices
    with pytest.raises(SpaceError, match="'sepconv' is not one of conv, dsconv, mbconv3, mbconv6"):
        MnasNetConfig(ops=["conv", "sepconv"])
