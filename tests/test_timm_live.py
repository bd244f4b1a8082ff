"""Compare the references with live timm models; skipped where timm does not import (as in CI)."""
import pytest
import torch

from search_spaces.random_specs import reference
from nas.network.counting import profile

timm = pytest.importorskip("timm", exc_type=ImportError)


@pytest.mark.parametrize("ours, theirs", [("efficientnet_b0", "efficientnet_b0"), ("mnasnet_a1", "semnasnet_100"),
                                          ("mobilenet_v2", "mobilenetv2_100")])
def test_reference_matches_live_timm(ours, theirs):
    from fvcore.nn import FlopCountAnalysis

    model = timm.create_model(theirs, pretrained=False).eval()
    analysis = FlopCountAnalysis(model, torch.zeros(1, 3, 224, 224))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    counts = profile(reference(ours))
    assert counts["params"] == sum(p.numel() for p in model.parameters())
    assert abs(counts["flops"] - analysis.total()) <= 0.005 * analysis.total()


@pytest.mark.parametrize("name", ["efficientnet_b0", "mnasnet_a1", "mobilenet_v2"])
def test_timm_arch_def_rebuilds_the_same_network(name):
    from timm.models._efficientnet_builder import decode_arch_def
    from timm.models.efficientnet import EfficientNet

    spec = reference(name)
    act = {"swish": torch.nn.SiLU, "relu": torch.nn.ReLU, "relu6": torch.nn.ReLU6}[spec.activation]
    model = EfficientNet(decode_arch_def(spec.timm_arch_def), stem_size=spec.stem_channels,
                         num_features=spec.head_channels, act_layer=act)
    assert sum(p.numel() for p in model.parameters()) == profile(spec, method="analytic")["params"]
