import math
import random

import pytest
import torch

from search_spaces.random_specs import random_spec, reference
from nas.network.blocks import MBConv, RegularConv
from nas.network.builder import build_model
from search_spaces.spec import spec_from_block_strings


def _layers(model):
    return [layer for stage in model.blocks for layer in stage]


def test_b0_forward_and_num_classes(b0):
    model = build_model(b0, num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 10)
    assert build_model(b0).classifier.out_features == 1000


def test_residual_and_drop_connect_placement(b0):
    model = build_model(b0)
    layers = _layers(model)
    assert len(layers) == 16
    residual = [layer.residual for layer in layers]
    # B0: residual on every repeated layer (stride 1, in == out); none on the first layer of a block
    assert residual == [False, False, True, False, True, False, True, True, False, True, True, False, True, True,
                        True, False]
    for index, layer in enumerate(layers):
        expected = 0.2 * index / 16 if layer.residual else 0.0
        assert layer.drop_rate == pytest.approx(expected)


def test_noskip_and_conv_op():
    spec = spec_from_block_strings(["r2_k3_s11_e1_i16_o16_noskip", "r2_k5_s11_e1_i16_o16_se0.25_conv"],
                                   stem_channels=16, head_channels=32, num_classes=5)
    layers = _layers(build_model(spec))
    assert [type(layer) for layer in layers] == [MBConv, MBConv, RegularConv, RegularConv]
    assert [layer.residual for layer in layers] == [False, False, True, True]
    assert layers[2].conv[0].kernel_size == (5, 5) and layers[2].conv[0].groups == 1
    assert layers[2].se.reduce.out_channels == 4  # max(1, int(16 * 0.25))


def test_mbconv_structure_and_se_width(b0):
    layer = _layers(build_model(b0))[1]  # r2_k3_s22_e6_i16_o24_se0.25, first layer
    assert layer.expand[0].out_channels == 96
    assert layer.depthwise[0].groups == 96 and layer.depthwise[0].stride == (2, 2)
    assert layer.se.reduce.out_channels == 4  # from the block's input channels (16 * 0.25), not 96
    assert layer.project[0].out_channels == 24 and len(layer.project) == 2  # linear bottleneck: no activation


def test_batchnorm_and_init(b0):
    torch.manual_seed(0)
    model = build_model(b0)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(bn.eps == 1e-3 and bn.momentum == 0.01 for bn in bns)
    conv = model.head[0]
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 1280), rel=0.05)
    bound = 1 / math.sqrt(1000)
    assert model.classifier.weight.abs().max().item() <= bound
    assert model.classifier.weight.abs().max().item() > 0.9 * bound


def test_activations():
    assert isinstance(build_model(reference("mobilenet_v2")).stem[2], torch.nn.ReLU6)
    assert isinstance(build_model(reference("mnasnet_a1")).stem[2], torch.nn.ReLU)
    assert isinstance(build_model(reference("efficientnet_b0")).stem[2], torch.nn.SiLU)


def test_stochastic_depth_only_in_training():
    spec = spec_from_block_strings(["r4_k3_s11_e1_i8_o8"], stem_channels=8, head_channels=16, num_classes=3,
                                   drop_connect=0.9)
    model = build_model(spec)
    x = torch.randn(64, 3, 16, 16)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    layer = _layers(model)[3]
    with torch.no_grad():
        y = layer(torch.ones(64, 8, 4, 4))
    # drop rate 0.9 * 3/4: most samples come out as the identity input (1.0) exactly
    identity = (y == 1).flatten(1).all(1).float().mean().item()
    assert 0.4 < identity < 0.95


def _built_as(layer, want) -> dict:
    """What a built layer is, in the spec's terms: op, kernel, stride, widths, SE width, residual."""
    first = layer.conv[0] if isinstance(layer, RegularConv) else layer.depthwise[0]
    cin = first.in_channels if isinstance(layer, RegularConv) else (
        layer.expand[0].in_channels if want.expand > 1 else first.in_channels)
    out = layer.conv[0].out_channels if isinstance(layer, RegularConv) else layer.project[0].out_channels
    se = layer.se.reduce.out_channels if not isinstance(layer.se, torch.nn.Identity) else 0
    return {"op": "conv" if isinstance(layer, RegularConv) else "mbconv", "kernel": first.kernel_size[0],
            "stride": first.stride[0], "in": cin, "out": out, "se": se, "residual": layer.residual}


def test_random_specs_build_what_they_say_and_run():
    """Every op, kernel, stride, expansion, SE ratio and skip: each built layer is the spec's layer, the
    stem's stride is the spec's, and the output is finite, one row of logits per image."""
    rng = random.Random(1)
    for _ in range(20):
        spec = random_spec(rng, resolution=32)
        model = build_model(spec).eval()
        wanted = [layer for block in spec.blocks for layer in block.layers()]
        built = _layers(model)
        assert len(built) == len(wanted) == spec.num_layers
        for layer, want in zip(built, wanted):
            assert _built_as(layer, want) == {
                "op": want.op, "kernel": want.kernel, "stride": want.stride, "in": want.in_channels,
                "out": want.out_channels, "se": max(1, int(want.in_channels * want.se)) if want.se else 0,
                "residual": want.residual}
        assert model.stem[0].stride == (spec.stem_stride, spec.stem_stride)
        assert model.stem[0].out_channels == spec.stem_channels and model.classifier.out_features == spec.num_classes
        with torch.no_grad():
            out = model(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, spec.num_classes) and torch.isfinite(out).all()
