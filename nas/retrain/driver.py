"""nas-train's driver: read the spec and the data, start (or join) Ray, run Ray Train's TorchTrainer, keep the
results in the run directory.

    runs/train-<name>-<time>/
      train.json    the settings (what --resume continues)        spec.json    the trained spec
      metrics.csv   one row per epoch                            curves.png   loss and accuracy per epoch
      last.pt, previous.pt, best.pt  checkpoints (nas.training.checkpoints)
      result.json   held-out and test accuracy, FLOPs, params, the spec's hash, recipe, versions
      report.html   the run at a glance (curves, accuracies, the network), rewritten every epoch
      ray/          Ray Train's own files; ray.log: Ray's messages
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from nas.console import say, warn
from nas.data.datasets import DataError, DataRef, data_warnings
from nas.engine.runner import Runner, next_experiment_name, node_resources
from nas.errors import UserInputError
from nas.files import RunLock, save_spec, writable_directory
from nas.network.counting import check_size, profile
from nas.report import live_report, refresh_report
from nas.retrain.config import SETTINGS_FILE, TrainSettings
from nas.retrain.curves import save_curves
from nas.retrain.progress import EpochWatcher
from nas.retrain.worker import train_loop_per_worker
from nas.timings import timed
from nas.training.checkpoints import check_architecture, latest_checkpoint, restore_best
from nas.training.full import METRICS
from nas.versions import versions
from search_spaces.spec import ArchSpec, architecture_hash, load_spec

RESULT_FILE, SPEC_FILE, CURVES_FILE = "result.json", "spec.json", "curves.png"


def resolve_spec(source: str, trial: int | None = None) -> ArchSpec:
    """The spec a SPEC argument names: a spec file, or a run directory's ``best_b0.json`` (with ``trial``: that
    trial of the run's trials.csv)."""
    path = Path(source)
    if trial is not None:
        if not (path / "search.json").is_file():
            raise UserInputError(f"--trial {trial}: {source} is not a nas-search run directory (--trial picks a "
                                 f"trial of one; give the directory as SPEC)")
        from nas.search.run import open_run

        return open_run(path, "--trial").trial_spec(trial)
    if path.is_dir():
        if not (path / "best_b0.json").is_file():
            raise UserInputError(f"{source}: a directory without best_b0.json (give a spec file or a nas-search "
                                 f"run directory)")
        path = path / "best_b0.json"
    return load_spec(path)


def default_out(spec: ArchSpec) -> Path:
    """``runs/train-<spec name>-<YYYYmmdd-HHMMSS>``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in spec.name).strip(".-") or "spec"
    return Path("runs") / f"train-{safe}-{time.strftime('%Y%m%d-%H%M%S')}"


def with_run_directory(settings: TrainSettings) -> TrainSettings:
    """``settings`` with ``out`` set: the default run directory of its spec when none is given."""
    if settings.out is None:
        settings.out = str(default_out(resolve_spec(settings.spec, settings.trial)))
    return settings


def worker_resources(nodes: list[dict[str, float]], workers: int, cpus: float | None,
                     gpus: float | None) -> tuple[float, float]:
    """CPUs and GPUs per worker (defaults: one GPU each when the cluster has GPUs; the CPUs shared out), and a
    one-line error when the cluster cannot place ``workers`` of them (Ray would leave them pending forever)."""
    total_cpus = sum(n.get("CPU", 0.0) for n in nodes)
    total_gpus = sum(n.get("GPU", 0.0) for n in nodes)
    if gpus is None:
        gpus = 1.0 if total_gpus >= workers else 0.0
    if cpus is None:
        if gpus > 0:
            cpus = max(1.0, min(8.0, min(n.get("CPU", 0.0) / max(1.0, n.get("GPU", 0.0) / gpus)
                                         for n in nodes if n.get("GPU", 0.0) >= gpus)))
        else:
            cpus = max(1.0, float(int(total_cpus // workers)) if len(nodes) == 1 else 1.0)
    fits = sum(min(int(n.get("CPU", 0.0) // cpus), int(n.get("GPU", 0.0) // gpus) if gpus > 0 else 10 ** 6)
               for n in nodes)
    if fits < workers:
        raise UserInputError(f"--workers {workers}: the Ray cluster has room for {fits} worker"
                             f"{'s' if fits != 1 else ''} of {cpus:g} CPU{' + %g GPU' % gpus if gpus else ''} "
                             f"({total_cpus:g} CPUs, {total_gpus:g} GPUs in all); use fewer workers or smaller "
                             f"--cpus-per-worker/--gpus-per-worker")
    return float(cpus), float(gpus)


def _prepare_out(settings: TrainSettings, spec: ArchSpec, resume: bool) -> Path:
    out = Path(settings.out) if settings.out else default_out(spec)
    if not resume and (out / SETTINGS_FILE).exists():
        raise UserInputError(f"--out {out} already holds a nas-train run: continue it with --resume, or choose "
                             f"another --out")
    writable_directory("--out", out)
    return out


def _load_data(settings: TrainSettings, resolution: int) -> Any:
    """The ImageSplits at ``resolution``: training/held-out (the search's rule) and the test split (when there is
    one and ``measure_test``); warnings on stderr."""
    try:
        reference = DataRef(settings.data, resolution, settings.val_fraction, settings.split_seed)
        data = reference.load()
        test = reference.load_test(data) if settings.measure_test else None
    except DataError as exc:
        raise UserInputError(str(exc)) from None
    notes = data_warnings(data)  # a batch larger than the training split is refused below, not warned of
    if test is not None:
        x_test, y_test, test_notes = test
        data, notes = data.with_test(x_test, y_test), notes + test_notes
    for note in notes:
        warn(note)
    if settings.recipe.batch_size > len(data.y_train):
        raise UserInputError(f"--batch-size {settings.recipe.batch_size} is more than the {len(data.y_train)} "
                             f"training images")
    return data


def _checkpoint_to_resume(out: Path, spec: ArchSpec) -> int:
    """The epoch a resume continues after (0 without a usable checkpoint), checked before any data is read: a
    checkpoint of another architecture is refused; unusable ones are set aside with a warning."""
    state, notes = latest_checkpoint(out)
    for note in notes:
        warn(note)
    if state is None:
        return 0
    check_architecture(state, architecture_hash(spec, int(state["num_classes"])), spec.name,
                       f"--resume: {out}'s checkpoint")
    note = restore_best(out, state)  # a run that lost best.pt resumes (before: failed at the very end)
    if note:
        warn(note)
    return int(state["epoch"])


def run_training(settings: TrainSettings, resume: bool = False, log: Callable[[str], None] = say,
                 live: bool | None = None) -> dict[str, Any]:
    """Train ``settings.spec`` with Ray Train and write the run directory; returns result.json's content."""
    if settings.recipe.batch_size % settings.workers:  # before anything is read or written
        raise UserInputError(f"--batch-size {settings.recipe.batch_size} does not split evenly over "
                             f"{settings.workers} workers")
    spec = resolve_spec(settings.spec, settings.trial)
    check_size(spec, settings.resolution or spec.resolution)  # one line before anything, not a worker OOM-killed
    out = _prepare_out(settings, spec, resume)
    with RunLock(out, "nas-train"):
        resolution = settings.resolution or spec.resolution
        done = _checkpoint_to_resume(out, spec) if resume else 0
        if not resume:
            (out / METRICS).unlink(missing_ok=True)
        with timed(out, "nas-train", "training"):
            return _train(settings, spec, out, resolution, done, live, log)


def _train(settings: TrainSettings, spec: ArchSpec, out: Path, resolution: int, done: int, live: bool | None,
           log: Callable[[str], None]) -> dict[str, Any]:
    """Load the data, train, and write the run directory's spec, settings, result, curves and page."""
    from nas.search.run_files import write_json

    data = _load_data(settings, resolution)
    spec = spec.replace(resolution=resolution, num_classes=data.num_classes)
    spec_hash = architecture_hash(spec)
    write_json(out / SETTINGS_FILE, {**settings.to_dict(), "out": str(out)})
    save_spec(spec, out / SPEC_FILE)
    with live_report(out, warn=log):
        counts = profile(spec, resolution)
        tested = f", {len(data.y_test)} test images" if data.test else ", no test split"
        log(f"nas-train: {spec.name} ({counts['params'] / 1e6:.2f}M params, {counts['flops'] / 1e6:.1f}M FLOPs "
            f"at {resolution}px) on {data.describe()}{tested}")
        if done:
            log(f"resuming after epoch {done} of {settings.recipe.epochs}")
        final = _fit(settings, spec, data, out, done, live, log)
        result = {"spec": spec.name, "spec_hash": spec_hash, "data": data.name, "resolution": resolution,
                  "num_classes": data.num_classes, "flops": counts["flops"], "params": counts["params"],
                  **final, "recipe": settings.recipe.to_dict(), "workers": settings.workers,
                  "versions": versions()}
        write_json(out / RESULT_FILE, result)
        save_curves(out / METRICS, out / CURVES_FILE, spec.name)
    test_part = f", test {final['test_accuracy']:.4f}" if "test_accuracy" in final else ""
    log(f"done: best held-out accuracy {final['val_accuracy']:.4f} (epoch {final['best_epoch']}, "
        f"{final['best_weights']} weights){test_part}; {out / 'best.pt'}, {out / RESULT_FILE}")
    return result


def _fit(settings: TrainSettings, spec: ArchSpec, data: Any, out: Path, done: int,
         live: bool | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Run the workers under Ray Train; the final report of rank 0."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig

    with Runner(settings.address, settings.debug, log_file=out / "ray.log") as runner:
        cpus, gpus = worker_resources(node_resources(), settings.workers, settings.cpus_per_worker,
                                      settings.gpus_per_worker)
        log(f"{settings.workers} worker{'s' if settings.workers > 1 else ''} ({cpus:g} CPU + {gpus:g} GPU each) on "
            f"{runner.where}; {out}")
        config = {"spec": spec.to_json(), "recipe": settings.recipe.to_dict(), "data": ray.put(data),
                  "out": str(out.resolve()),
                  "threads": max(1, int(cpus))}
        storage = out / "ray"
        trainer = trainer_class(local=not settings.address)(
            train_loop_per_worker, train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=settings.workers, use_gpu=gpus > 0,
                                         resources_per_worker={"CPU": cpus, "GPU": gpus}),
            run_config=RunConfig(name=next_experiment_name(storage, "train"), storage_path=str(storage.resolve()),
                                 failure_config=FailureConfig(max_failures=2)))
        try:
            with EpochWatcher(out / METRICS, settings.recipe.epochs, done, live=live,
                              on_epoch=lambda: refresh_report(out, "running", warn=log)):
                result = _fit_interruptibly(trainer)
        except KeyboardInterrupt:
            log(f"stopped; continue with: nas-train --resume --out {out}")
            raise
        except ray.train.TrainingFailedError as exc:
            raise RuntimeError(_failure_reason(exc)) from None
    final = result.return_value
    if not isinstance(final, dict) or "val_accuracy" not in final:
        raise RuntimeError("the workers ended without their final accuracies; see ray.log in the run directory")
    return final


def trainer_class(local: bool) -> Any:
    """Ray Train's TorchTrainer; on a local Ray instance (started without a dashboard) without its placement
    group cleaner.

    The cleaner is a detached actor that removes a dead controller's placement group on a long-lived cluster.
    It asks Ray's state API, which needs the dashboard, whether the controller lives: without one every ask
    waits out its 10 s timeout, and every training ended 12-16 s late waiting for the cleaner to stop. On a
    local instance the placement groups end with the instance anyway. If Ray renames the hook, the cleaner
    simply stays.
    """
    from ray.train.torch import TorchTrainer

    if not local:
        return TorchTrainer

    class LocalTorchTrainer(TorchTrainer):
        def _create_default_callbacks(self) -> list[Any]:
            callbacks = super()._create_default_callbacks()
            return [c for c in callbacks if type(c).__name__ != "PlacementGroupCleanerCallback"]

    return LocalTorchTrainer


def _fit_interruptibly(trainer: Any) -> Any:
    """``trainer.fit()`` in a thread, so that Ctrl-C and SIGTERM reach this command as a KeyboardInterrupt.

    In the main thread, Ray Train installs its own SIGINT handler, which aborts the run and exits the process
    without a word (status 0 or 1). Leaving the main thread to wait keeps the command's own handling: one line,
    the resume command, exit 130 (143 after SIGTERM); the workers stop when Ray shuts down, and the
    checkpoints of finished epochs are kept.
    """
    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.5)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _failure_reason(exc: BaseException) -> str:
    """The first worker's error in one line (Ray Train wraps it with the worker group's details)."""
    causes = getattr(exc, "worker_failures", None) or {}
    for error in (causes.values() if isinstance(causes, dict) else causes):
        cause = getattr(error, "cause", None) or error
        return f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
