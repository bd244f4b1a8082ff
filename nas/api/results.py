"""What the API's functions return: a search's run, a training's accuracies, an export's files."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search_spaces.spec import ArchSpec, load_spec

if TYPE_CHECKING:  # a DataFrame, read when a search ends; pandas is not loaded for a command's --help
    import pandas as pd


@dataclass
class SearchResult:
    """A finished (or interrupted) search: its run directory, best spec and every candidate."""

    run_dir: Path
    trials: pd.DataFrame  # trials.csv
    finished: bool
    config: Any = None  # the run's SearchConfig
    start_names: dict = field(default_factory=dict)  # choices tuple -> start point name
    held_out_images: int = 0  # the proxy's held-out split

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best_b0.json"

    @property
    def best(self) -> ArchSpec | None:
        """best_b0.json (the finalists' winner with finalists); None before any candidate trained."""
        return load_spec(self.best_path) if self.best_path.is_file() else None

    @property
    def finalists_due(self) -> bool:
        """Whether finalists are to be trained: the search finished, asked for them and trained a candidate."""
        return bool(self.finished and self.config.final_stage.finalists and (self.trials["status"] == "ok").any())


@dataclass
class TrainResult:
    """A finished nas-train run: accuracies, the checkpoint, and result.json whole."""

    run_dir: Path
    val_accuracy: float
    test_accuracy: float | None
    checkpoint: Path
    result: dict[str, Any]


@dataclass
class ExportResult:
    """An exported network: the files written, each one's largest difference from PyTorch, and what was
    exported (the spec, which weights, the input size it was checked at)."""

    onnx: Path | None
    torchscript: Path | None
    differences: dict[str, float]  # "onnx" / "torchscript" -> max abs difference from PyTorch
    spec: ArchSpec
    weights: str  # "random", or which weights of the checkpoint
    resolution: int

    @property
    def max_difference(self) -> float:
        return max(self.differences.values())
