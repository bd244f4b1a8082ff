"""nas-search: the controller proposes, Ray Tune trains, the driver scores and records.

The parts: :mod:`nas.config` (the configuration), :mod:`nas.trial` (what a trial does),
:mod:`nas.searcher` (the controller as a Tune Searcher), :mod:`nas.recorder` (the run directory),
:mod:`nas.cache` (results across runs) and :mod:`nas.runner` (Ray and the Tuner). This module wires them.
"""
from __future__ import annotations

import numbers
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from controllers import make_controller
from nas.console import say
from nas.config import SearchConfig
from nas.errors import UserInputError
from nas.progress import Progress, ProgressCallback, human_duration
from nas.records import COLUMNS, StateError, load_state, read_trials, repair_trials, write_json
from nas.recorder import Recorder, versions
from nas.runner import Runner, next_experiment_name, trials_per_gpu
from nas.searcher import EVALUATED, MAX_DUPLICATES, MAX_SCREENED, ControllerSearcher, screened_reward
from nas.spec import NOTATION
from nas.trial import TRAINER_VERSION, run_trial
from search_spaces.mnasnet import MnasNetSpace


@dataclass
class SearchOutcome:
    """What a search run leaves: the trials, and whether the search reached its end."""

    trials: pd.DataFrame
    finished: bool
    seconds: float = 0.0


def load_history(run_dir: Path) -> list[dict[str, Any]]:
    """The finished trials of a run as records (the rows of trials.csv)."""
    records = read_trials(run_dir / "trials.csv").to_dict("records")
    for record in records:
        record["choices"] = list(record["choices"])
        reason = record.get("reason")
        record["reason"] = "" if reason is None or reason != reason else reason
        record["block_strings"] = str(record.get("block_strings") or "").split()
        source = record.get("source")
        record["source"] = source if isinstance(source, str) and source else "trained"
        latency = record.get("latency_ms")
        record["latency_ms"] = float(latency) if isinstance(latency, numbers.Real) and latency == latency else ""
    return records


def saved_config(run_dir: Path) -> SearchConfig:
    """The configuration a run directory's ``search.json`` holds."""
    import json

    path = Path(run_dir) / "search.json"
    if not path.is_file():
        raise UserInputError(f"--resume: {path} not found; is {run_dir} a nas-search run directory?")
    try:
        fields = json.loads(path.read_text())["config"]
        return SearchConfig.from_dict(fields)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserInputError(f"--resume: cannot read {path} ({exc})") from None


def restore_controller(controller: Any, state: dict[str, Any] | None, history: list[dict[str, Any]]) -> None:
    """Restore the controller and tell it any recorded trial its saved state had not heard of yet."""
    told: set[int] = set()
    if state:
        controller.load_state_dict(state["controller"])
        told = set(state.get("told", []))
    for record in history:
        if record["trial"] not in told:
            controller.tell(list(record["choices"]), float(record["reward"]))


def rescore(history: list[dict[str, Any]], config: SearchConfig) -> list[dict[str, Any]]:
    """The records with their rewards recomputed under ``config``'s target and reward (a screened one: the
    lowest rescored reward before it, as the searcher would have told it)."""
    out: list[dict[str, Any]] = []
    for record in sorted(history, key=lambda r: r["trial"]):
        if record["status"] in EVALUATED:
            reward = config.score(record["accuracy"], record["flops"], record.get("latency_ms") or 0.0)
        elif record["status"] == "screened":
            reward = screened_reward(out)
        else:
            reward = 0.0
        out.append(dict(record, reward=reward))
    return out


def open_cache(config: SearchConfig, data: Any, warn: Callable[[str], None]) -> Any:
    """The result cache for this search's proxy, or None with ``--no-cache``."""
    if config.no_cache:
        return None
    from nas.cache import ResultCache, default_cache_path, proxy_fingerprint

    fingerprint = proxy_fingerprint(data, config.budget().to_dict(), config.seed, TRAINER_VERSION)
    return ResultCache(config.cache or default_cache_path(), fingerprint, warn=warn)


def _flops_text(flops: float) -> str:
    if flops >= 1e9:
        return f"{flops / 1e9:.3g}G"
    return f"{flops / 1e6:.3g}M" if flops >= 1e6 else f"{flops:g}"


def target_warning(config: SearchConfig, space: MnasNetSpace, num_classes: int) -> str | None:
    """A warning when ``--target-flops`` lies outside what the space can build at ``--resolution``."""
    from nas.profile import space_flops_range

    if not config.target_flops:
        return None
    low, high = space_flops_range(space, config.resolution, num_classes)
    target = config.target_flops
    if low <= target <= high:
        return None
    where = "below the smallest" if target < low else "above the largest"
    hint = ""
    if target < 1e6 and low <= target * 1e6 <= high:
        hint = f"; did you mean --target-flops {target:g}M?"
    return (f"warning: --target-flops {_flops_text(target)} is {where} network this search space builds at "
            f"{config.resolution} px (about {_flops_text(low)} to {_flops_text(high)}){hint}")


def make_scheduler(config: SearchConfig, data: Any) -> Any:
    """Ray Tune's ASHA over the step budget (milestones at the trainer's rungs), or None for ``none``."""
    if config.scheduler == "none":
        return None
    from ray.tune.schedulers import ASHAScheduler

    from nas.train import rung_steps

    total = config.budget().total_steps(len(data.y_train))
    rungs = rung_steps(total)
    return ASHAScheduler(time_attr="steps", metric="accuracy", mode="max", max_t=total,
                         grace_period=rungs[0] if rungs else total, reduction_factor=2)


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def run_search(config: SearchConfig, data: Any, resume: bool = False, log: Callable[[str], None] = say,
               trainable: Callable[..., None] = run_trial, live: bool | None = None) -> SearchOutcome:
    """Run (or resume) a search into ``config.out``; see the module docstring.

    ``trainable`` is the Tune function trainable, ``run_trial`` unless a test injects another. Lines go to
    ``log``; with the default (print) on a terminal, a live status line is kept below them (``live``
    forces it on or off).
    """
    started = time.perf_counter()
    run_dir = Path(config.out).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = saved_config(run_dir) if resume else None
    if resume:
        torn = repair_trials(run_dir / "trials.csv")
        if torn:
            _warn(torn)
    history = load_history(run_dir) if resume else []
    write_json(run_dir / "search.json", {"config": config.to_dict(), "versions": versions(),
                                         "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "resumed": resume})
    space = MnasNetSpace()
    num_classes = config.num_classes or data.num_classes
    recorder: Recorder | None = None

    def done() -> tuple[int, float | None]:
        best = recorder.best if recorder is not None else None
        return (recorder.count if recorder is not None else 0), (best["reward"] if best else None)

    progress = Progress(config.trials, done, live=live)
    log = progress.log if log is say else log
    recorder = Recorder(run_dir, config, space, num_classes, history, log,
                        on_record=lambda record: progress.trial_ended(int(record["trial"])))
    controller = make_controller(config.controller, space, seed=config.seed, **config.controller_options)
    state = None
    if resume:
        try:
            state = load_state(run_dir / "controller.pkl")
        except StateError as exc:  # trials.csv is the record of truth: the controller is rebuilt from it
            _warn(f"warning: {exc}; the controller is rebuilt from trials.csv instead")
    if previous is not None and previous.rescores(config):
        # a new target or reward: every recorded trial is rescored, and a fresh controller learns from them
        history = rescore(history, config)
        recorder.rescored(history)
        state = None
        log(f"rescored {len(history)} recorded trials for target {config.describe_target()}, "
            f"{config.reward} reward (w={config.w:g})")
    elif history and not set(COLUMNS) <= set(pd.read_csv(run_dir / "trials.csv", nrows=0).columns):
        recorder.rescored(history)  # a run from an older version: rewritten once with today's columns
    if not resume or (previous is not None and previous.rescores(config)):
        warning = target_warning(config, space, num_classes)
        if warning:
            _warn(warning)
    restore_controller(controller, state, history)
    searcher = ControllerSearcher(controller, space, config, num_classes, history, recorder,
                                  duplicates=int((state or {}).get("duplicates", 0)))
    remaining = config.trials - searcher.finished
    if resume:
        log(f"resuming {run_dir}: {searcher.finished} trials finished, {max(0, remaining)} to go")
    if remaining <= 0:
        return SearchOutcome(recorder.finalize(), True, time.perf_counter() - started)

    log(f"proxy data {data.describe()}")
    log(NOTATION)
    cache = open_cache(config, data, _warn)
    searcher.cache = cache
    log(f"starting Ray ({'joining ' + config.address if config.address else 'a local instance'})...")
    try:
        with Runner(config.address, config.debug, config.gpus_per_trial, config.cpus_per_trial,
                    config.concurrency, trials_per_gpu(config.proxy_resolution, config.batch_size),
                    log_file=run_dir / "ray.log") as runner:
            res = runner.resources
            log(f"{config.trials} candidates by {config.controller} on {runner.where}: {res.describe()}; "
                f"target {config.describe_target()}, {config.reward} reward "
                f"(w={config.w:g}); cache: {_describe_cache(cache)}")
            from ray import tune

            trial_config = config.with_resources(res.cpus, res.gpus, res.concurrency)
            storage = run_dir / "ray"
            runner.run(tune.with_parameters(trainable, data=data, search=trial_config), storage=storage,
                       name=next_experiment_name(storage), search_alg=searcher, num_samples=remaining,
                       scheduler=make_scheduler(config, data), callbacks=[ProgressCallback(progress, space.summary)])
    finally:
        progress.close()
        if cache is not None:
            cache.close()
    if searcher.converged:
        log(f"the controller has converged: {MAX_DUPLICATES} proposals in a row were already evaluated")
    if searcher.gave_up_screening:
        lo, hi = config.flops_window
        log(f"stopped: the controller proposed {MAX_SCREENED} candidates in a row outside the window "
            f"{lo:g}-{hi:g} x target; widen it (--flops-window) or check the target")
    frame = recorder.finalize()
    finished = searcher.finished >= config.trials or searcher.converged or searcher.gave_up_screening
    seconds = time.perf_counter() - started
    if finished:
        cached = int((frame["source"] == "cache").sum()) if "source" in frame else 0
        log(f"finished {searcher.finished} candidates in {human_duration(seconds)} ({cached} from the cache, "
            f"{recorder.screened} screened out by FLOPs)")
    else:
        log(f"stopped after {searcher.finished} of {config.trials} trials; continue with: "
            f"nas-search --resume --out {config.out}")
    return SearchOutcome(frame, finished, seconds)


def _describe_cache(cache: Any) -> str:
    if cache is None:
        return "off (--no-cache)"
    return str(cache.path) if cache.enabled else "off (not usable)"
