"""nas-train from Python: ``train`` makes the run's settings as the command does and trains on Ray Train."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.api.data import data_argument
from nas.api.results import SearchResult, TrainResult
from nas.errors import UserInputError
from nas.files import save_spec
from nas.retrain.config import TrainSettings, default_split_seed, saved_settings
from nas.signals import handlers_kept
from nas.training.recipe import TrainRecipe
from search_spaces.spec import ArchSpec


def train(spec: str | Path | ArchSpec | SearchResult, data: Any = "synthetic", *, out: str | Path | None = None,
          trial: int | None = None, resolution: int | None = None, workers: int = 1, resume: bool = False,
          split_seed: int | None = None, address: str | None = None, gpus_per_worker: float | None = None,
          cpus_per_worker: float | None = None, **recipe: Any) -> TrainResult:
    """nas-train: ``train(result.best_path, data="folder:photos/", resolution=64, epochs=30)``.

    ``spec``: a spec file, a nas-search run directory (with ``trial``: that trial), an ArchSpec, or a
    SearchResult. ``recipe``: TrainRecipe's fields (epochs, batch_size, optimizer, lr, weight_decay, seed, ...).
    ``split_seed``: which images are held out (default: a search run's own seed, else 0), whatever ``seed``.
    ``address``, ``gpus_per_worker``, ``cpus_per_worker``: where and on what the workers run, as nas-train's
    flags (default: a local Ray instance, sized to the machine).
    """
    if isinstance(spec, SearchResult):
        spec = spec.run_dir
    if resume:
        settings = saved_settings(Path(out)) if out else None
        if settings is None:
            raise UserInputError("resume=True needs out, the run directory to continue")
        settings.out = str(out)
        return train_from_settings(settings, resume=True)
    if isinstance(spec, ArchSpec):
        spec, out = _spec_file(spec, out)
    try:
        recipe_value = TrainRecipe(**recipe)
    except (TypeError, ValueError) as exc:
        raise UserInputError(str(exc)) from None
    settings = TrainSettings(spec=str(spec), trial=trial, data=data_argument(data, Path(out) if out else Path("runs")),
                             recipe=recipe_value, resolution=resolution, out=str(out) if out else None,
                             workers=workers, split_seed=split_seed if split_seed is not None
                             else default_split_seed(str(spec)), address=address,
                             gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker)
    return train_from_settings(settings)


def _spec_file(spec: ArchSpec, out: str | Path | None) -> tuple[Path, Path]:
    """An ArchSpec given in Python, saved as the run's input_spec.json (in ``out``, or the default run
    directory): that file and the run directory."""
    from nas.retrain.driver import default_out  # torch and Ray: imported when a training runs

    run_dir = Path(out) if out else default_out(spec)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_spec(spec, run_dir / "input_spec.json")
    return run_dir / "input_spec.json", run_dir


def train_from_settings(settings: TrainSettings, resume: bool = False) -> TrainResult:
    """What nas-train does once its settings are made: train on Ray Train and read back the run's result (the
    caller's signal handlers put back afterwards)."""
    from nas.retrain.driver import run_training, with_run_directory  # torch and Ray: imported when it runs

    settings = with_run_directory(settings)
    with handlers_kept():
        result = run_training(settings, resume=resume)
    run_dir = Path(settings.out)
    return TrainResult(run_dir, float(result["val_accuracy"]), result.get("test_accuracy"), run_dir / "best.pt",
                       result)
