"""nas.api: docs/python.md's example runs as written in a fresh directory; data from arrays and a torch
Dataset; bad input raises the commands' one-line errors."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from nas.api.data import data_argument, dataset_arrays
from nas.errors import UserInputError

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray instance for the commands run in-process

PAGE = Path(__file__).resolve().parents[1] / "docs" / "python.md"


def test_the_python_page_runs_as_written_in_a_fresh_directory(tmp_path, monkeypatch, capsys):
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S):
        exec(compile(block, str(PAGE), "exec"), namespace)
    found, trained, exported, b3 = (namespace[k] for k in ("found", "trained", "exported", "b3"))
    trials = pd.read_csv(tmp_path / "runs/demo/trials.csv")
    assert found.finished and len(found.trials) == len(trials) and found.best.num_classes == 3
    assert found.best.block_strings == namespace["load_spec"]("runs/demo/best_b0.json").block_strings
    assert (tmp_path / "runs/demo/data.npz").is_file()  # the arrays, kept with the run
    assert trained.run_dir == Path("runs/demo-trained") and trained.checkpoint.is_file()
    assert trained.val_accuracy == trained.result["val_accuracy"] and trained.test_accuracy is None
    assert json.loads((tmp_path / "runs/demo-trained/train.json").read_text())["cpus_per_worker"] == 1
    assert exported.onnx.is_file() and exported.max_difference <= 1e-4
    assert b3.resolution == round(300 * 32 / 224) and sum(p.numel() for p in namespace["model"].parameters()) > 0
    assert f"held-out accuracy {trained.val_accuracy:.3f}" in capsys.readouterr().out


def test_arrays_and_a_torch_dataset_become_an_npz_the_commands_read(tmp_path):
    import torch
    from torch.utils.data import TensorDataset

    from nas.data.datasets import load_data

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (40, 12, 12, 3), dtype=np.uint8)
    y = np.arange(40) % 4
    text = data_argument((x, y), tmp_path / "a")
    assert text == f"npz:{tmp_path / 'a' / 'data.npz'}"
    data = load_data(text, 12)
    assert len(data.y_train) + len(data.y_val) == 40 and data.num_classes == 4
    # a Dataset of CHW float tensors in [0, 1], as torchvision's ToTensor gives them
    dataset = TensorDataset(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255, torch.from_numpy(y))
    arrays = dataset_arrays(dataset)
    assert arrays["x"].dtype == np.uint8 and np.array_equal(arrays["x"], x) and np.array_equal(arrays["y"], y)
    assert data_argument("cifar10:somewhere", tmp_path) == "cifar10:somewhere"


def test_bad_input_raises_the_commands_one_line_errors(tmp_path):
    from nas import api

    with pytest.raises(UserInputError, match="is not a --data string"):
        data_argument(42, tmp_path)
    with pytest.raises(UserInputError, match="needs arrays 'x' and 'y'"):
        data_argument({"images": np.zeros((2, 4, 4, 3), np.uint8)}, tmp_path)
    with pytest.raises(UserInputError, match="^target_flops: FLOPs 'lots'"):
        api.search(target_flops="lots", out=tmp_path / "x")
    with pytest.raises(UserInputError, match="^proxy_resolution 4: must be 8 to"):  # named as the keyword
        api.search("400M", out=tmp_path / "x", proxy_resolution=4)
    with pytest.raises(UserInputError, match="^proxy_resolutoin: not a setting of a search"):
        api.search("400M", out=tmp_path / "x", proxy_resolutoin=64)
    b0 = "search_spaces/references/efficientnet_b0.json"
    with pytest.raises(UserInputError, match="give one of preset"):
        api.scale(b0)
    with pytest.raises(UserInputError, match="choose one of preset=, phi=, or width="):
        api.scale(b0, preset="b1", phi=1)
    with pytest.raises(UserInputError, match="width=, depth= and resolution= go together"):
        api.scale(b0, width=1.1)
    with pytest.raises(UserInputError, match="alpha= is used with phi= or a family, not with preset="):
        api.scale(b0, preset="b3", alpha=1.3)  # would be ignored
    with pytest.raises(UserInputError, match="gamma= is used with phi= or a family, not with width="):
        api.scale(b0, width=1.1, depth=1.2, resolution=240, gamma=1.1)
    assert api.scale(b0, phi=1, alpha=1.5).num_layers > api.scale(b0, phi=1).num_layers  # with phi= it counts
