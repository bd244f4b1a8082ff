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
