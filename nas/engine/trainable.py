"""The Tune side of the engine: the one trainable, the one results callback, and a searcher for job lists.

Every trial's configuration holds ``"job"`` (``Job.to_dict()``) beside the command's own labels (``trial``,
``choices``, ``index``); its data and resources come through ``tune.with_parameters``. It reports each rung
and then its final measurement (``Measurement.to_dict()``).
"""
from __future__ import annotations

from typing import Any, Callable

from ray import tune
from ray.tune.search import Searcher

from nas.engine.job import Job, Measurement, failed
from nas.engine.measure import measure, trial_device

Config = dict[str, Any]


def run_job(config: Config, datasets: dict[str, Any] | None = None, resources: Any = None) -> None:
    """One Ray Tune trial: measure ``config["job"]`` on ``datasets[job.data]`` with this trial's
    ``resources`` (the runner's plan: ``cpus`` and ``gpus`` per trial)."""
    if datasets is None:
        raise ValueError("run_job needs the data sets (datasets=...)")
    job = Job.from_dict(config["job"])
    device = trial_device(getattr(resources, "cpus", 1.0), getattr(resources, "gpus", 0.0))
    measured = measure(job, datasets[job.data], device=device,
                       report=lambda rung: tune.report(rung.to_dict()))
    tune.report(measured.to_dict())


WORKER_ERRORED = "the trial's worker errored (details in ray.log)"


class JobEvents(tune.Callback):
    """The one results callback: hands a trial's start, its final measurement and Tune's ticks to the
    command's functions (each optional); a trial whose worker errored reaches ``on_result`` as a failed
    measurement. Intermediate (rung) reports are not results: they are the
    scheduler's business.

    Tune saves its callbacks with the experiment's state: a pickled copy carries no functions and does nothing.
    """

    def __init__(self, on_start: Callable[[Config], None] | None = None,
                 on_result: Callable[[Config, Measurement], None] | None = None,
                 on_tick: Callable[[], None] | None = None) -> None:
        self.on_start, self.on_result, self.on_tick = on_start, on_result, on_tick

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.on_start = self.on_result = self.on_tick = None

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.on_start is not None:
            self.on_start(trial.config or {})

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if self.on_result is not None and result.get("final", True) is not False:
            self.on_result(trial.config, Measurement.from_result(result))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.on_result is not None:
            self.on_result(trial.config, failed(WORKER_ERRORED))

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self.on_tick is not None:
            self.on_tick()


class JobList(Searcher):
    """A Tune Searcher that proposes a fixed list of jobs in order (nas-proxy-check's trainings, the scaling
    grid): each trial's configuration is ``{"job": ..., "index": i}``. Results reach the command through
    :class:`JobEvents`."""

    def __init__(self, jobs: list[Job]) -> None:
        super().__init__()
        self.configs = [{"job": job.to_dict(), "index": index} for index, job in enumerate(jobs)]
        self.next = 0

    def suggest(self, trial_id: str) -> Config | None:
        if self.next >= len(self.configs):
            return Searcher.FINISHED
        self.next += 1
        return self.configs[self.next - 1]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass
