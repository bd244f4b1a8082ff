"""Our references and arch_def strings against timm: always against what timm 1.0.31 itself measured and
decoded (benchmarks/results/timm_parity.json, written by benchmarks/timm_parity.py in a venv with timm), and
against live timm where it imports (not in CI: timm pulls a CUDA torchvision)."""
import json
import random

import pytest

from benchmarks.timm_parity import LIVE_MODELS, OUT, timm_decoded_params, timm_model_counts
from search_spaces.ops import LAYER_KINDS
from search_spaces.random_specs import random_spec, reference
from search_spaces.spec import BlockSpec
from nas.network.counting import profile

RECORD = json.loads(OUT.read_text())  # what benchmarks/timm_parity.py recorded


@pytest.mark.parametrize("name", sorted(LIVE_MODELS))
def test_reference_matches_timms_recorded_model(name):
    """Parameters exactly and fvcore FLOPs within 0.5% of timm's model of the same network, as timm built it."""
    theirs = RECORD["references"][name]
    ours = profile(reference(name))
    assert theirs["timm_model"] == LIVE_MODELS[name]
    assert ours["params"] == theirs["params"]
    assert abs(ours["flops"] - theirs["flops"]) <= 0.005 * theirs["flops"]


@pytest.mark.parametrize("name", sorted(LIVE_MODELS))
def test_timms_decoder_rebuilt_our_reference_arch_defs(name):
    row, spec = RECORD["references"][name], reference(name)
    assert spec.timm_arch_def == row["timm_arch_def"]
    assert profile(spec, method="analytic")["params"] == row["decoded_params"]


def test_timms_decoder_rebuilt_random_arch_defs():
    """Random specs (every op, kernel 1-7, expansion 1-6, SE ratios) write the arch_def timm decoded into a
    network with exactly their parameter count."""
    assert len(RECORD["random"]) >= 10
    for row in RECORD["random"]:
        spec = random_spec(random.Random(row["seed"]))
        assert spec.timm_arch_def == row["timm_arch_def"], row["seed"]
        assert profile(spec, method="analytic")["params"] == row["decoded_params"], row["seed"]


@pytest.mark.parametrize("expand, se, cin", [(3, 0.0, 12), (1, 0.1, 48), (6, 0.1, 48)])
def test_no_arch_def_where_timm_would_round_a_width_otherwise(expand, se, cin):
    """12 x 3 = 36 channels, which timm widens to 40; a squeeze of 48 x 0.1 = 4.8, which timm rounds to 5."""
    block = BlockSpec(op="mbconv", repeats=1, kernel=3, stride=1, expand=expand, in_channels=cin,
                      out_channels=16, se=se, skip=True)
    assert LAYER_KINDS["mbconv"].timm(block) is None
    assert LAYER_KINDS["mbconv"].timm(BlockSpec(op="mbconv", repeats=1, kernel=3, stride=1, expand=expand,
                                                in_channels=16, out_channels=16, se=0.25 if se else 0.0,
                                                skip=True)) is not None


def _timm():
    return pytest.importorskip("timm", exc_type=ImportError)


@pytest.mark.parametrize("ours, theirs", LIVE_MODELS.items())
def test_reference_matches_live_timm(ours, theirs):
    _timm()
    theirs_counted, ours_counted = timm_model_counts(theirs), profile(reference(ours))
    assert ours_counted["params"] == theirs_counted["params"]
    assert abs(ours_counted["flops"] - theirs_counted["flops"]) <= 0.005 * theirs_counted["flops"]


@pytest.mark.parametrize("name", sorted(LIVE_MODELS))
def test_timm_arch_def_rebuilds_the_same_network(name):
    _timm()
    spec = reference(name)
    assert timm_decoded_params(spec) == profile(spec, method="analytic")["params"]
