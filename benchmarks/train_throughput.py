"""Training throughput of our EfficientNet-B0 against timm's ``efficientnet_b0``, in the same loop, one run.

timm imports torchvision, which does not import beside the CPU torch 2.13.0, so run this from a separate
virtual environment (the project itself does not depend on timm):

    python3 -m venv /tmp/timmvenv && /tmp/timmvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 timm
    PYTHONPATH=. /tmp/timmvenv/bin/python -m benchmarks train_throughput [--resolution 32] [--steps 30]

Both models are trained by nas.training.proxy.train_model (channels_last, float32 on CPU, bf16 autocast on CUDA) on
the same synthetic data; the first steps are a warm-up and excluded by timing two runs and differencing.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch


from nas.data.datasets import ImageSplits, split
from nas.network.builder import build_model
from search_spaces.spec import load_spec
from nas.data.synthetic import generate
from nas.training.recipe import proxy_recipe
from nas.training.proxy import train_model

B0 = Path(__file__).resolve().parents[1] / "search_spaces" / "references" / "efficientnet_b0.json"


def images_per_second(make_model, data: ImageSplits, steps: int, batch_size: int, device: str) -> float:
    """Steady-state training images/s: time ``steps`` and ``2 * steps`` and divide the difference."""
    times = []
    for n in (steps, 2 * steps):
        result = train_model(make_model(), data, proxy_recipe(steps=n, batch_size=batch_size), device=device)
        times.append(result["train_seconds"])
    return steps * batch_size / max(times[1] - times[0], 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    import timm

    x, y = generate(max(1000, 2 * args.batch_size), args.resolution, 10, seed=0)
    data = ImageSplits("synthetic", *split(x, y, 0.2, 0), num_classes=10)
    spec = load_spec(B0)
    ours = images_per_second(lambda: build_model(spec, 10), data, args.steps, args.batch_size, args.device)
    theirs = images_per_second(lambda: timm.create_model("efficientnet_b0", num_classes=10), data, args.steps,
                               args.batch_size, args.device)
    print(f"B0 training at {args.resolution}px, batch {args.batch_size}, {args.device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, timm {timm.__version__}")
    print(f"ours : {ours:8.1f} images/s")
    print(f"timm : {theirs:8.1f} images/s")
    print(f"ratio: {ours / theirs:8.3f} (ours / timm; goal >= 1.0)")


if __name__ == "__main__":
    main()
