"""What a nas-train run is: the spec, the data, the recipe, and where its workers run (``train.json``)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nas.errors import UserInputError
from nas.training.recipe import TrainRecipe

SETTINGS_FILE = "train.json"
FORMAT = "nas-train-run/1"


@dataclass
class TrainSettings:
    """One nas-train run. ``resolution`` None: the spec's. Worker resources None: sized to the cluster."""

    spec: str
    data: str = "synthetic"
    trial: int | None = None  # with a nas-search run directory as ``spec``: that trial instead of its best
    recipe: TrainRecipe = field(default_factory=TrainRecipe)
    resolution: int | None = None
    val_fraction: float = 0.2
    split_seed: int = 0  # which images are held out (with val_fraction): the data's, not the training's seed
    out: str | None = None
    workers: int = 1
    gpus_per_worker: float | None = None
    cpus_per_worker: float | None = None
    address: str | None = None
    debug: bool = False
    measure_test: bool = True  # False: the test split is not read (a search's finalists are chosen without it)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self), "recipe": self.recipe.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainSettings":
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["recipe"] = TrainRecipe.from_dict(data.get("recipe", {}))
        values.setdefault("split_seed", values["recipe"].seed)  # before split_seed: split by the training seed
        return cls(**values)


def saved_settings(out_dir: Path) -> TrainSettings:
    """The settings a run directory was started with (what ``--resume`` continues)."""
    path = Path(out_dir) / SETTINGS_FILE
    if not path.is_file():
        raise UserInputError(f"--resume: {out_dir} holds no nas-train run ({SETTINGS_FILE} is missing)")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, not {FORMAT}")
        return TrainSettings.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise UserInputError(f"--resume: {path} cannot be read ({exc})") from None


def default_split_seed(source: str) -> int:
    """The held-out split's seed when none is given: a nas-search run's own ``--seed`` (its winner is then
    judged on the images the search held out), else 0 (the search's default)."""
    if (Path(source) / "search.json").is_file():
        from nas.search.run import open_run  # pandas: loaded when a run is read

        return int(open_run(Path(source)).config.proxy.seed)
    return 0
