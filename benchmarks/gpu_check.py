"""One short check for a CUDA machine: proxy training of B0 and a sampled candidate at 64 and 224 px with
bf16 autocast and channels_last, images/s beside timm's efficientnet_b0 in the same loop, peak GPU memory,
and whether the loss falls. Needs only torch (and timm, if present): no Ray, no fvcore.

    PYTHONPATH=. python benchmarks/gpu_check.py [--steps 60]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.data import ProxyData, split  # noqa: E402
from nas.model import build_model  # noqa: E402
from nas.spec import load_spec  # noqa: E402
from nas.synthetic import generate  # noqa: E402
from nas.train import TrainBudget, init_for_short_training, train_model  # noqa: E402
from search_spaces.mnasnet import default_space  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run(name: str, make_model, data: ProxyData, steps: int, batch_size: int) -> dict:
    torch.cuda.reset_peak_memory_stats()
    short = train_model(make_model(), data, TrainBudget(steps=max(2, steps // 6), batch_size=batch_size), "cuda")
    full = train_model(make_model(), data, TrainBudget(steps=steps, batch_size=batch_size), "cuda")
    rate = (steps - max(2, steps // 6)) * batch_size / max(full["train_seconds"] - short["train_seconds"], 1e-9)
    return {"name": name, "ips": rate, "first_loss": short["final_loss"], "last_loss": full["final_loss"],
            "accuracy": full["accuracy"], "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
            "status": full["status"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device")
    try:
        import timm
    except ImportError:
        timm = None
    torch.backends.cudnn.benchmark = True
    print(f"{torch.cuda.get_device_name()} | torch {torch.__version__} | timm {getattr(timm, '__version__', '-')}")
    b0 = load_spec(ROOT / "search_spaces" / "references" / "efficientnet_b0.json")
    space = default_space()
    candidate = space.decode(space.sample(np.random.default_rng(0)))
    print(f"candidate: {space.summary(space.encode(candidate))}")

    def ours(spec):
        def make():
            model = build_model(spec, 10)
            init_for_short_training(model)
            return model
        return make

    for resolution, batch_size in ((64, 256), (224, 128)):
        x, y = generate(4 * batch_size, resolution, 10, seed=0)
        data = ProxyData("synthetic", *split(x, y, 0.25, 0), num_classes=10)
        rows = [run("ours B0", ours(b0), data, args.steps, batch_size),
                run("ours candidate", ours(candidate), data, args.steps, batch_size)]
        if timm is not None:
            rows.append(run("timm efficientnet_b0", lambda: timm.create_model("efficientnet_b0", num_classes=10),
                            data, args.steps, batch_size))
        print(f"\n{resolution}px, batch {batch_size}, {args.steps} steps, bf16 autocast + channels_last")
        for r in rows:
            falls = "falls" if r["last_loss"] < r["first_loss"] else "DOES NOT FALL"
            print(f"  {r['name']:<22} {r['ips']:9.0f} img/s  peak {r['peak_gib']:5.2f} GiB  loss {r['first_loss']:.3f}"
                  f" -> {r['last_loss']:.3f} ({falls})  {r['status']}")
        if timm is not None:
            print(f"  ratio ours B0 / timm B0: {rows[0]['ips'] / rows[2]['ips']:.3f} (goal >= 1.0)")
    time.sleep(0)


if __name__ == "__main__":
    main()
