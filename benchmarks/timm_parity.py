"""Record what timm itself says of our networks, so that a test can hold us to it where timm is not installed.

    python benchmarks/timm_parity.py [--random 12] [--out benchmarks/results/timm_parity.json]

Needs a virtual environment with timm (which pulls torchvision; see train_throughput.py's docstring). For each
reference network: the matching timm model's parameters and fvcore FLOPs at 224 px; for each reference and
for random specs of ours (``random_spec`` with seeds 0, 1, ...) that have a timm equivalent: the spec's
``timm_arch_def`` as we write it and the parameter count of the network timm's own decoder
(``decode_arch_def`` into ``EfficientNet``) builds from it. tests/test_timm_live.py checks our counts and
strings against this file on every run, and against live timm where it imports.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch

LIVE_MODELS = {"efficientnet_b0": "efficientnet_b0", "mnasnet_a1": "semnasnet_100", "mobilenet_v2": "mobilenetv2_100"}
ACTIVATIONS = {"swish": torch.nn.SiLU, "relu": torch.nn.ReLU, "relu6": torch.nn.ReLU6}
OUT = Path(__file__).resolve().parent / "results" / "timm_parity.json"


def timm_model_counts(timm_name: str) -> dict[str, int]:
    """Parameters and fvcore FLOPs (224 px, batch 1) of one of timm's models, untrained."""
    import timm
    from fvcore.nn import FlopCountAnalysis

    model = timm.create_model(timm_name, pretrained=False).eval()
    analysis = FlopCountAnalysis(model, torch.zeros(1, 3, 224, 224))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return {"params": sum(p.numel() for p in model.parameters()), "flops": int(analysis.total())}


def timm_decoded_params(spec) -> int:
    """Parameters of the network timm's decoder builds from ``spec.timm_arch_def``."""
    from timm.models._efficientnet_builder import decode_arch_def
    from timm.models.efficientnet import EfficientNet

    model = EfficientNet(decode_arch_def(spec.timm_arch_def), num_classes=spec.num_classes,
                         stem_size=spec.stem_channels, num_features=spec.head_channels,
                         act_layer=ACTIVATIONS[spec.activation])
    return sum(p.numel() for p in model.parameters())


def random_specs_with_timm_form(count: int) -> list[tuple[int, object]]:
    """(seed, spec) for the first ``count`` seeds whose random spec has a timm arch_def."""
    from search_spaces.random_specs import random_spec

    found, seed = [], 0
    while len(found) < count:
        spec = random_spec(random.Random(seed))
        if spec.timm_arch_def is not None:
            found.append((seed, spec))
        seed += 1
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=12, help="random specs to decode (default 12)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    import timm

    from search_spaces.random_specs import reference

    record = {"timm": timm.__version__, "torch": torch.__version__, "references": {}, "random": []}
    for ours, theirs in LIVE_MODELS.items():
        spec = reference(ours)
        record["references"][ours] = {"timm_model": theirs, **timm_model_counts(theirs),
                                      "timm_arch_def": spec.timm_arch_def,
                                      "decoded_params": timm_decoded_params(spec)}
    for seed, spec in random_specs_with_timm_form(args.random):
        record["random"].append({"seed": seed, "timm_arch_def": spec.timm_arch_def,
                                 "decoded_params": timm_decoded_params(spec)})
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out} (timm {timm.__version__})")


if __name__ == "__main__":
    main()
