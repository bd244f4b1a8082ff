"""nas-train of one of a search's finalists: the training the search's final stage
(:mod:`nas.search.final_stage`) is given by the commands and the API."""
from __future__ import annotations

import json
from typing import Any, Callable

from nas.files import save_spec
from nas.retrain.config import TrainSettings, saved_settings
from nas.retrain.driver import RESULT_FILE, run_training
from nas.search.final_stage import FOLDER, Finalist
from nas.search.run import SearchRun
from nas.training.recipe import TrainRecipe


def train_finalist(run: SearchRun, finalist: Finalist, epochs: float, train_images: int,
                   log: Callable[[str], None], folder: str = FOLDER) -> dict[str, Any]:
    """nas-train of one finalist in ``<folder>/<name>/`` (``finalists/``, or ``finalists/short/`` for the short
    trainings): read back when done, resumed when interrupted. Its batch is nas-train's, or the training split
    when that is smaller (nas-train refuses a larger batch)."""
    out = run.path / folder / finalist.name
    if (out / RESULT_FILE).is_file():
        return json.loads((out / RESULT_FILE).read_text())
    if (out / "train.json").is_file():
        return run_training(saved_settings(out), resume=True, log=log)
    spec_file = run.path / folder / f"{finalist.name}.json"
    spec_file.parent.mkdir(parents=True, exist_ok=True)
    save_spec(finalist.spec, spec_file)
    config = run.config
    recipe = TrainRecipe(epochs=epochs, seed=config.proxy.seed, batch_size=min(TrainRecipe.batch_size, train_images))
    settings = TrainSettings(spec=str(spec_file), data=config.proxy.data, recipe=recipe,
                             val_fraction=config.proxy.val_fraction, split_seed=config.proxy.seed, out=str(out),
                             address=config.resources.address,
                             measure_test=False)
    return run_training(settings, log=log)
