"""nas-search's driver: the controller proposes, the engine trains, the driver scores and records.

The parts: :mod:`nas.search.config` (the configuration), :mod:`nas.search.loop` (the search loop: ask, screen,
serve the cache, hand out jobs, record, tell), :mod:`nas.search.searcher` (the loop as a Tune Searcher),
:mod:`nas.search.scheduler` (ASHA by the reward), :mod:`nas.search.recorder` (the run directory),
and the engine (:mod:`nas.engine`: the jobs, the cache, the runner). This module wires them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from controllers import make_controller
from nas.console import say, warn
from nas.engine.cache import open_cache
from nas.engine.runner import Runner, next_experiment_name, trials_per_gpu
from nas.engine.trainable import JobEvents
from nas.errors import UserInputError
from nas.files import RunLock
from nas.latency.tables import load_table
from nas.network.counting import check_space_size, extreme_specs, space_flops_range
from nas.search.config import SearchConfig
from nas.search.final_stage import final_stage_plan
from nas.search.progress import Progress, human_duration
from nas.search.recorder import Recorder
from nas.search.run import SETTINGS_FILE, open_run, write_space_file
from nas.search.run_files import STATE_FILE, StateError, load_state, read_records, repair_trials, write_json
from nas.search.scheduler import make_scheduler
from nas.search.loop import MAX_DUPLICATES, MAX_SCREENED, SearchLoop, screened_reward
from nas.search.resuming import rescores
from nas.search.searcher import ControllerSearcher
from nas.search.start_points import LEVELS, resolve_start_points
from nas.search.trial_record import COLUMNS, EVALUATED, TrialRecord
from nas.training.budget import rung_steps
from nas.versions import versions
from search_spaces.mnasnet import MnasNetSpace
from nas.search.proxy_evidence import evidence_line
from search_spaces.spec import NOTATION, spec_from_dict


@dataclass
class SearchOutcome:
    """What a search run leaves: the trials, whether the search reached its end, and the names of its start
    points (choices -> name)."""

    trials: pd.DataFrame
    finished: bool
    seconds: float = 0.0
    start_names: dict[tuple[int, ...], str] = field(default_factory=dict)


def load_history(run_dir: Path) -> list[TrialRecord]:
    """The finished trials of a run as records (the rows of trials.csv)."""
    return read_records(Path(run_dir) / "trials.csv")


def saved_config(run_dir: Path) -> SearchConfig:
    """The configuration a run directory's ``search.json`` holds (its space included)."""
    return open_run(run_dir, "--resume").config


def restore_controller(controller: Any, state: dict[str, Any] | None, history: list[TrialRecord]) -> None:
    """Restore the controller and tell it any recorded trial its saved state had not heard of yet."""
    told: set[int] = set()
    if state:
        controller.load_state_dict(state["controller"])
        told = set(state.get("told", []))
    for record in history:
        if record["trial"] not in told:
            controller.tell(list(record["choices"]), float(record["reward"]))


def rescore(history: list[TrialRecord], config: SearchConfig) -> list[TrialRecord]:
    """The records with their rewards recomputed under ``config``'s target and reward (a screened one: the
    lowest rescored reward before it, as the search loop would have told it)."""
    out: list[TrialRecord] = []
    for record in sorted(history, key=lambda r: r["trial"]):
        if record["status"] in EVALUATED:
            reward = config.objective.score(record["accuracy"], record["flops"], record.get("latency_ms") or 0.0)
        elif record["status"] == "screened":
            reward = screened_reward(out)
        else:
            reward = 0.0
        out.append(dict(record, reward=reward))
    return out


def preflight(config: SearchConfig) -> tuple[list[str], Any]:
    """What a new or resumed search checks before its data loads, for the command line and the API alike: its
    warnings, the size bound of its space's largest network, and its latency table (opened once; None
    without one). User errors are raised."""
    space, objective = config.search_space(), config.objective
    check_space_size(space, max(objective.resolution, config.proxy.resolution), objective.num_classes or 1000)
    return config.warnings(), open_latency_table(config, space)


def open_latency_table(config: SearchConfig, space: MnasNetSpace) -> Any:
    """The search's latency table (read once, here: the search loop, the scheduler and the recorder use it), or
    None without one; a table of another space or resolution is a user error."""
    objective = config.objective
    if not objective.latency_table:
        return None

    table = load_table(objective.latency_table, space)
    if table.resolution != objective.resolution:
        raise UserInputError(f"--latency-table {objective.latency_table}: built for {table.resolution}px, the search "
                             f"counts at {objective.resolution}px (--resolution)")
    return table


def _flops_text(flops: float) -> str:
    if flops >= 1e9:
        return f"{flops / 1e9:.3g}G"
    return f"{flops / 1e6:.3g}M" if flops >= 1e6 else f"{flops:g}"


def target_warning(config: SearchConfig, space: MnasNetSpace, num_classes: int) -> str | None:
    """A warning when ``--target-flops`` lies outside what the space can build at ``--resolution``."""
    if not config.objective.target_flops:
        return None
    bounds = tuple(space.config.fit_bounds) if config.fit_flops else (1.0, 1.0)
    low, high = space_flops_range(space, config.objective.resolution, num_classes, widths=bounds)
    target = config.objective.target_flops
    if low <= target <= high:
        return None
    where = "below the smallest" if target < low else "above the largest"
    hint = ""
    if target < 1e6 and low <= target * 1e6 <= high:
        hint = f"; did you mean --target-flops {target:g}M?"
    fitted = f", widths fitted x{bounds[0]:g} to x{bounds[1]:g}" if config.fit_flops else ""
    return (f"warning: --target-flops {_flops_text(target)} is {where} network this search space builds at "
            f"{config.objective.resolution} px (about {_flops_text(low)} to {_flops_text(high)}{fitted}){hint}")


def latency_target_warning(config: SearchConfig, space: MnasNetSpace, num_classes: int,
                           table: Any) -> str | None:
    """A warning when ``--target-latency`` lies outside what the table predicts for the space's networks (a
    target given in seconds where milliseconds are meant, say), as :func:`target_warning` does for FLOPs."""
    objective = config.objective
    if not objective.target_latency_ms or table is None:
        return None
    predicted = [table.predict(spec) for spec in extreme_specs(space, objective.resolution, num_classes, samples=200)]
    low, high, target = min(predicted), max(predicted), objective.target_latency_ms
    if low <= target <= high:
        return None
    where = "below the fastest" if target < low else "above the slowest"
    hint = f"; did you mean {target * 1000:g}ms?" if target < low and low <= target * 1000 <= high else ""
    return (f"warning: --target-latency {target:g}ms is {where} network this search space builds, as "
            f"{objective.latency_table} predicts (about {low:.3g} to {high:.3g} ms){hint}")


def _warn(message: str) -> None:
    warn(message)


@dataclass
class Session:
    """One start or resume of a search: its directory, history and the parts wired to them."""

    run_dir: Path
    config: SearchConfig
    space: MnasNetSpace
    recorder: Recorder
    loop: SearchLoop
    progress: Progress
    log: Callable[[str], None]
    total_steps: int  # each candidate's training steps (the scheduler's horizon; the rungs lie below it)


def _load_previous(run_dir: Path, config: SearchConfig,
                   previous: SearchConfig | None) -> tuple[list[TrialRecord], dict[str, Any] | None, bool]:
    """On resume: the recorded trials (a torn last row set aside), the controller's saved state, and whether
    the trials are to be rescored for a new target or reward (then the saved state is not used)."""
    if previous is None:
        return [], None, False
    torn = repair_trials(run_dir / "trials.csv")
    if torn:
        _warn(torn)
    history = load_history(run_dir)
    state = None
    try:
        state = load_state(run_dir / STATE_FILE)
    except StateError as exc:  # trials.csv is the record of truth: the controller is rebuilt from it
        _warn(f"warning: {exc}; the controller is rebuilt from trials.csv instead")
    if not (run_dir / STATE_FILE).exists() and (run_dir / "controller.pkl").exists():
        _warn("note: controller.pkl, the controller state of an older version, is not loaded (a pickle can run "
              "code); the controller is rebuilt from trials.csv instead")
    if rescores(previous, config):
        return rescore(history, config), None, True
    return history, state, False


def open_session(config: SearchConfig, data: Any, previous: SearchConfig | None, log: Callable[[str], None],
                 live: bool | None, table: Any = None) -> Session:
    """Write search.json, read what a resume continues from, and wire the recorder, controller and search loop."""
    space = config.search_space()
    if table is None:  # read here unless the command line has (before anything is written: a wrong one is a
        table = open_latency_table(config, space)  # user error)
    run_dir = Path(config.out).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    history, state, rescored = _load_previous(run_dir, config, previous)
    write_json(run_dir / SETTINGS_FILE, {"config": config.to_dict(), "space_fingerprint": space.fingerprint,
                                         "versions": versions(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                         "resumed": previous is not None})
    write_space_file(run_dir, space)
    num_classes = config.objective.num_classes or data.num_classes

    def done() -> tuple[int, float | None]:  # asked by the status line once the recorder below exists
        return recorder.count, (recorder.best or {}).get("reward")

    progress = Progress(config.trials, done, live=live)
    log = progress.log if log is say else log
    starts = resolve_start_points(config.start_from, space, config.sizing(num_classes))
    recorder = Recorder(run_dir, config, space, num_classes, history, log, latency_table=table, start_points=starts,
                        on_record=lambda record: progress.trial_ended(int(record["trial"])))
    if rescored:
        recorder.rescored(history)
        log(f"rescored {len(history)} recorded trials for target {config.objective.describe_target()}, "
            f"{config.objective.describe_reward()}")
    elif history and not set(COLUMNS) <= set(pd.read_csv(run_dir / "trials.csv", nrows=0).columns):
        recorder.rescored(history)  # a run from an older version: rewritten once with today's columns
    if previous is None or rescored:
        for warning in (target_warning(config, space, num_classes),
                        latency_target_warning(config, space, num_classes, table)):
            if warning:
                _warn(warning)
    controller = make_controller(config.controller, space, seed=config.proxy.seed, **config.controller_options)
    restore_controller(controller, state, history)
    total = config.proxy.recipe().total_steps(len(data.y_train))
    if previous is None:
        log(f"search space: {space.overview()}")
        if starts:
            how = ("b0-Nx: EfficientNet-B0 at Nx downsampling, sized to the target" if LEVELS in config.start_from
                   else "each as its nearest architecture in the space")
            log(f"starting from {', '.join(name for name, _ in starts)} ({how}), then the {config.controller} "
                f"controller")
    loop = SearchLoop(controller, space, config, num_classes, history, recorder,
                                  duplicates=int((state or {}).get("duplicates", 0)), latency_table=table,
                                  saved=state, start_points=starts,
                                  rungs=rung_steps(total) if config.scheduler != "none" else ())
    return Session(run_dir, config, space, recorder, loop, progress, log, total)


def run_search(config: SearchConfig, data: Any, previous: SearchConfig | None = None,
               log: Callable[[str], None] = say, trainable: Callable[..., None] | None = None,
               live: bool | None = None, latency_table: Any = None) -> SearchOutcome:
    """Run a search into ``config.out``, or resume it when ``previous`` (the run's saved configuration) is given.
    ``latency_table``: ``config.objective.latency_table`` already read (:func:`open_latency_table`), or None to read it.

    ``trainable``: the Tune trainable, the engine's ``run_job`` unless a test injects another. Lines go to
    ``log``; with the default on a terminal, a live status line is kept below them (``live`` forces it on or
    off).
    """
    with RunLock(config.out):  # one command at a time in a run directory
        return _run_search(config, data, previous, log, trainable, live, latency_table)


def _run_search(config: SearchConfig, data: Any, previous: SearchConfig | None, log: Callable[[str], None],
                trainable: Callable[..., None] | None, live: bool | None, latency_table: Any) -> SearchOutcome:
    started = time.perf_counter()
    session = open_session(config, data, previous, log, live, latency_table)
    loop, log = session.loop, session.log
    remaining = config.trials - loop.finished
    if previous is not None:
        log(f"resuming {session.run_dir}: {loop.finished} trials finished, {max(0, remaining)} to go")
    if remaining <= 0:
        return SearchOutcome(session.recorder.finalize(), True, time.perf_counter() - started,
                             session.recorder.start_names)
    session.recorder.write_report("running")
    try:
        train_candidates(session, data, remaining, trainable)
    except BaseException:
        session.recorder.write_report("interrupted")
        raise
    return finish(session, time.perf_counter() - started)


def train_candidates(session: Session, data: Any, remaining: int, trainable: Callable[..., None] | None) -> None:
    """Start Ray, then let the search loop propose (through Tune's searcher) and the engine train ``remaining``
    candidates."""
    config, loop, log = session.config, session.loop, session.log
    objective, finalists, resources = config.objective, config.final_stage.finalists, config.resources
    log(f"proxy data {data.describe()}")
    log(evidence_line(config.proxy))
    if finalists:
        log(final_stage_plan(config, loop.space))
    log(NOTATION)
    loop.cache = cache = open_cache(config.resources, {"proxy": data}, _warn)

    def reward_of(trial: Any, result: dict[str, Any]) -> float:  # a rung report, scored as the controller learns
        return objective.score(result["accuracy"], result.get("flops") or 0, loop.latency_of(trial.trial_id))

    log(f"starting Ray ({'joining ' + resources.address if resources.address else 'a local instance'})...")
    try:
        with Runner.for_settings(resources, trials_per_gpu(config.proxy.resolution, config.proxy.batch_size),
                                 log_file=session.run_dir / "ray.log") as runner:
            log(f"{config.trials} candidates by {config.controller} on {runner.where}: "
                f"{runner.resources.describe()}; target {objective.describe_target()}, {objective.describe_reward()}; "
                f"cache: {_describe_cache(cache)}")
            progress, sized = session.progress, session.space.searches_resolution

            def started(trial_config: dict[str, Any]) -> None:  # the network the job trains, as recorded
                spec = spec_from_dict(trial_config["job"]["spec"])
                progress.trial_started(int(trial_config["trial"]),
                                       spec.notation() + (f" at {spec.resolution}px" if sized else ""))

            events = JobEvents(on_start=started,
                               on_tick=progress.tick)
            storage = session.run_dir / "ray"
            runner.run(ControllerSearcher(loop), {"proxy": data}, storage=storage, name=next_experiment_name(storage),
                       num_samples=remaining, callbacks=[events], trainable=trainable,
                       scheduler=make_scheduler(config.scheduler, session.total_steps, loop.rungs,
                                                        reward_of))
    finally:
        session.progress.close()
        if cache is not None:
            cache.close()


def finish(session: Session, seconds: float) -> SearchOutcome:
    """Say why the search ended, write the final files, and return the outcome."""
    config, loop, log = session.config, session.loop, session.log
    if loop.converged:
        log(f"the controller has converged: {MAX_DUPLICATES} proposals in a row were already evaluated")
    if loop.gave_up_screening:
        lo, hi = config.objective.window
        log(f"stopped: the controller proposed {MAX_SCREENED} candidates in a row outside the window "
            f"{lo:g}-{hi:g} x target; widen it (--flops-window) or check the target")
    finished = loop.finished >= config.trials or loop.converged or loop.gave_up_screening
    frame = session.recorder.finalize("finished" if finished else "interrupted")
    if finished:
        cached = int((frame["source"] == "cache").sum()) if "source" in frame else 0
        log(f"finished {loop.finished} candidates in {human_duration(seconds)} ({cached} from the cache, "
            f"{session.recorder.screened} screened out by FLOPs)")
    else:
        log(f"stopped after {loop.finished} of {config.trials} trials; continue with: "
            f"nas-search --resume --out {config.out}")
    return SearchOutcome(frame, finished, seconds, session.recorder.start_names)


def _describe_cache(cache: Any) -> str:
    if cache is None:
        return "off (--no-cache)"
    return str(cache.path) if cache.enabled else "off (not usable)"
