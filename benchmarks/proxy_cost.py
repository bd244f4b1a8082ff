"""One proxy training's cost and result: EfficientNet-B0 at 32 px, 300 steps of batch 64, synthetic data, 2 threads.

Run it from the root of each checkout to compare two versions side by side, alternating (it reads the
``nas`` package of the directory it runs in; older versions' TrainBudget is taken where proxy_recipe is absent):
    (cd OLD && python /path/to/benchmarks/proxy_cost.py); (cd NEW && python -m benchmarks proxy_cost)
Results: benchmarks/results/proxy_cost.csv.
"""
import sys, json
sys.path.insert(0, ".")
import torch
torch.set_num_threads(2)
from nas.data.datasets import load_data
from nas.training.proxy import train_candidate
from search_spaces.spec import load_spec
data = load_data("synthetic", 32, 0.2, 0)
spec = load_spec("search_spaces/references/efficientnet_b0.json").replace(resolution=32, num_classes=data.num_classes)
try:
    from nas.training.recipe import proxy_recipe as make
except ImportError:
    from nas.training.budget import TrainBudget as make
r = train_candidate(spec, data, make(steps=300, batch_size=64), device="cpu", seed=0)
print(json.dumps({"train_seconds": round(r["train_seconds"], 1), "accuracy": r["accuracy"], "loss": round(r["final_loss"], 4)}))
