"""The search loop, plain Python: ask the controller, screen, skip duplicates, serve cached results, hand out a
job, record, tell. Ray is not in it: the Ray Tune Searcher (:mod:`nas.search.searcher`) only translates Tune's
calls to it, and tests and benchmarks drive it directly (``suggest`` a job, ``complete`` it with a result).

Each finished candidate becomes a record (one row of ``trials.csv``) handed to a listener (the run's
:class:`~nas.search.recorder.Recorder`) together with the controller state to save.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Sequence

from nas.engine.job import Job, Measurement, failed
from nas.engine.runner import TRIAL_RETRIES
from nas.network.counting import profile
from nas.search.config import SearchConfig
from nas.search.trial_record import EVALUATED, TrialRecord, trial_record
from nas.signals import InterruptWatch
from search_spaces.mnasnet import MnasNetSpace
from search_spaces.spec import ArchSpec

MAX_DUPLICATES = 200  # consecutive already-evaluated proposals after which the controller has converged
MAX_SCREENED = 2000  # consecutive proposals outside the window after which the search gives up
SUGGEST_SLICE_SECONDS = 0.5  # a suggest() that screened or skipped this long returns to Tune (see suggest)


class Running(NamedTuple):
    """A candidate being trained: its trial number, choices, decoded spec, predicted latency and job."""

    trial: int
    choices: list[int]
    spec: ArchSpec
    latency_ms: float | None
    job: Job


class Listener(Protocol):
    """Who keeps what the searcher decides (the run directory's recorder)."""

    def record(self, record: TrialRecord, state: dict[str, Any]) -> None: ...

    def save_state(self, state: dict[str, Any]) -> None: ...


def screened_reward(records: list[TrialRecord]) -> float:
    """What a screened candidate is told: the lowest reward measured so far (0 before any).

    Below every trained candidate, yet on the scale of the rewards the controller sees, so it neither
    drags the RL controllers' baseline down as a 0 would, nor leaves them without a signal (docs/search.md,
    "Search efficiency": measured on benchmarks/controller_landscapes.py against telling 0 and telling nothing).
    """
    measured = [float(r["reward"]) for r in records if r["status"] in EVALUATED]
    return min(measured) if measured else 0.0


def screen_reason(config: SearchConfig, flops: int, latency_ms: float | None) -> str:
    """Why the window kept a candidate from training: its FLOPs and/or predicted latency against the window."""
    lo, hi = config.objective.window
    reasons = []
    if config.objective.target_flops:
        reasons.append(f"{flops / 1e6:.0f}M FLOPs (window {lo * config.objective.target_flops / 1e6:g}M-"
                       f"{hi * config.objective.target_flops / 1e6:g}M)")
    if config.objective.target_latency_ms:
        reasons.append(f"{latency_ms:.1f} ms (window {lo * config.objective.target_latency_ms:g}-"
                       f"{hi * config.objective.target_latency_ms:g} ms)")
    return "outside the window: " + ", ".join(reasons)


DONE = "DONE"  # what suggest returns when the search has proposed all it will (Tune's Searcher.FINISHED)


class SearchLoop:
    """The search over a MnasNet space, with any controller (``ask``/``tell``), one job at a time.

    ``suggest`` asks the controller and puts ``trial``, ``choices`` and the candidate's ``job`` into the
    trial's config. An architecture this run already evaluated is told its recorded reward and not trained
    again; one the result cache knows is recorded with ``source=cache`` and told like any result, without a
    trial. ``complete`` scores the trial's measurement with the search's reward and tells the
    controller (reward 0 for a failed or errored trial; a trial a scheduler stopped is told its last rung's
    reward). It declares no Tune metric: it judges every trial by that reward, computed here on the driver.

    ``start_points`` ((name, choices) pairs) are proposed before the controller is asked, each once, and trained on
    the whole budget (no rungs, so the scheduler cannot stop them); those this run has already recorded are
    skipped, so a resumed run does not train them again.

    Before any of that, the pre-screen: a proposal whose analytic FLOPs (or predicted latency) fall outside
    the window is recorded with status ``screened``, told :func:`screened_reward`, not trained; screened
    candidates do not count toward ``config.trials``.
    """

    def __init__(self, controller: Any, space: MnasNetSpace, config: SearchConfig, num_classes: int,
                 history: list[TrialRecord] | None = None, listener: Listener | None = None,
                 cache: Any = None, duplicates: int = 0, rungs: Sequence[int] = (),
                 latency_table: Any = None, saved: dict[str, Any] | None = None,
                 start_points: Sequence[tuple[str, list[int]]] = ()) -> None:
        self.controller, self.space, self.config = controller, space, config
        self.num_classes, self.listener, self.cache = num_classes, listener, cache
        self.rungs, self.latency_table = tuple(rungs), latency_table
        self.budget = config.proxy.recipe()
        self.decoder = config.decoder(num_classes, space)  # choices -> the network trained (widths fitted to the target)
        self.records: list[TrialRecord] = []
        self.evaluated: dict[tuple[int, ...], TrialRecord] = {}
        self.told: set[int] = set()  # trials the controller has been told
        self._load_records(list(history or []))
        self.live: dict[str, Running] = {}
        self.in_flight: dict[tuple[int, ...], int] = {}
        self.waiting: dict[tuple[int, ...], int] = {}
        self.duplicates = duplicates  # proposals answered from the records instead of training
        self.converged = False
        self.interrupt = InterruptWatch()
        self.duplicates_in_a_row = 0
        self.screened_in_a_row = 0
        self.gave_up_screening = False  # MAX_SCREENED proposals in a row were outside the window
        # after a kill: the numbers handed out stay taken, and the trials that were running are trained again
        # under their own numbers before the controller proposes anything new
        saved = saved or {}
        self.next_trial = max(self.next_trial, int(saved.get("next_trial", 0)))
        self.replay = [(int(trial), list(choices)) for trial, choices in saved.get("in_flight", [])
                       if tuple(choices) not in self.evaluated]
        self.start_points = [(name, list(choices)) for name, choices in start_points]
        self.start_keys = {tuple(choices) for _, choices in start_points}
        if config.objective.screening:
            controller.feasible = self.in_window  # the predictor then proposes only what the pre-screen passes

    def predicted_latency(self, spec: ArchSpec) -> float | None:
        """The latency (ms) the search's table predicts for ``spec``, or None without a table."""
        return None if self.latency_table is None else self.latency_table.predict(spec)

    def latency_of(self, trial_id: str) -> float:
        """The predicted latency (ms) of a running trial's candidate; 0 without a table."""
        running = self.live.get(trial_id)
        return (running.latency_ms if running else None) or 0.0

    def _load_records(self, records: list[TrialRecord]) -> None:
        self.records = records
        self.evaluated = {tuple(r["choices"]): r for r in records if r["status"] in EVALUATED}
        self.screened = {tuple(r["choices"]) for r in records if r["status"] == "screened"}
        self.told = {r["trial"] for r in records}
        # numbered after the highest recorded trial: unique even when a kill lost a lower-numbered one
        self.next_trial = max((int(r["trial"]) for r in records), default=-1) + 1

    def state(self) -> dict[str, Any]:
        """What ``controller.pt`` holds: the controller, the trials it was told, the duplicates count."""
        return {"controller": self.controller.state_dict(), "told": sorted(self.told),
                "duplicates": self.duplicates, "next_trial": self.next_trial,
                "in_flight": [[running.trial, list(running.choices)] for running in self.live.values()]
                + [[trial, choices] for trial, choices in self.replay]}

    @property
    def finished(self) -> int:
        """Candidates evaluated so far (trained, stopped, failed or served from the cache; not screened)."""
        return sum(1 for r in self.records if r["status"] != "screened")

    def job(self, spec: ArchSpec, trial: int, rungs: Sequence[int] | None = None) -> Job:
        """The job of trial ``trial``: the search's budget and rungs (or ``rungs``), seeded by the trial, cached by
        the search's seed (a cached result serves every later search with that seed)."""
        return Job(spec=spec.to_dict(), budget=self.budget, seed=self.config.proxy.seed + trial,
                   train_width=self.config.proxy.width,
                   train_resolution=spec.resolution if self.space.searches_resolution else None,
                   rungs=self.rungs if rungs is None else tuple(rungs), cache_seed=self.config.proxy.seed)

    def in_window(self, choices: Sequence[int]) -> bool:
        """Whether ``choices`` would pass the pre-screen (analytic FLOPs and predicted latency in the window); for
        a fitted network, from the bounds of its fit (two counts, not a fit's eight: the predictor asks this of
        2,000 candidates per proposal)."""
        if self.decoder.fit_flops is not None and self.latency_table is None:
            lo, hi = self.config.objective.window
            target = self.config.objective.target_flops
            return self.decoder.fits_in(choices, lo * target, hi * target)
        spec = self._spec(list(choices))
        flops = profile(spec, method="analytic")["flops"]
        return not self.config.objective.screens(flops, self.predicted_latency(spec) or 0.0)

    def _screen(self, choices: list[int], spec: ArchSpec, latency_ms: float | None) -> bool:
        """The pre-screen: True (recorded and told) when ``choices`` is not to be trained."""
        if not self.config.objective.screening:
            return False
        counts = profile(spec, method="analytic")
        if not self.config.objective.screens(counts["flops"], latency_ms or 0.0):
            self.screened_in_a_row = 0
            return False
        self.screened_in_a_row += 1
        self.gave_up_screening = self.screened_in_a_row >= MAX_SCREENED
        key = tuple(choices)
        reward = screened_reward(self.records)
        if key in self.screened:  # screened before: told again, recorded once
            self.controller.tell(choices, reward)
            return True
        self.screened.add(key)
        trial = self.next_trial
        self.next_trial += 1
        measured = Measurement(flops=counts["flops"], params=counts["params"],
                               reason=screen_reason(self.config, counts["flops"], latency_ms))
        record = trial_record(trial, "screened", choices, spec, measured, "screened", self.config.objective.score,
                              latency_ms, status="screened")
        self._complete(dict(record, reward=reward))
        return True

    def _spec(self, choices: list[int], trial: int = 0) -> ArchSpec:
        return self.decoder(choices, name=f"trial-{trial:04d}")

    # -- suggestions
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next candidate to train, as the trial's config (``trial``, ``choices``, ``job``), for the trial
        ``trial_id``; None to be asked again (after ``SUGGEST_SLICE_SECONDS`` of screened or already-known
        proposals, so that the caller's loop gets its turn), or ``DONE`` (done, or stopped by Ctrl-C or
        SIGTERM: the driver tells the two apart by the counts)."""
        started, proposals = time.monotonic(), 0
        self.interrupt.arm()
        while (self.finished + len(self.live) < self.config.trials and not self.converged
               and not self.gave_up_screening):
            if self.interrupt.fired():  # with nothing running, Tune would keep asking, not look at its stop
                return DONE
            if proposals and time.monotonic() - started > SUGGEST_SLICE_SECONDS:
                return None
            proposals += 1
            reserved, choices = self.replay.pop(0) if self.replay else (None, self._propose())
            key = tuple(choices)
            spec = self._spec(choices)  # decoded once per proposal
            latency_ms = self.predicted_latency(spec)
            if self._screen(choices, spec, latency_ms):
                continue
            if key in self.evaluated or key in self.in_flight:
                self.duplicates_in_a_row += 1
                self.duplicates += 1
                if key in self.evaluated:  # known: tell the recorded reward, train nothing
                    self.controller.tell(choices, float(self.evaluated[key]["reward"]))
                else:  # being trained now: told when that trial finishes
                    self.waiting[key] = self.waiting.get(key, 0) + 1
                self.converged = self.duplicates_in_a_row >= MAX_DUPLICATES
                continue
            self.duplicates_in_a_row = 0
            trial = reserved if reserved is not None else self.next_trial
            if reserved is None:
                self.next_trial += 1
            spec = spec.replace(name=f"trial-{trial:04d}")
            # a start point reports only at its end: the scheduler never stops it early, so it is judged on the
            # whole budget, the yardstick the controller's candidates are measured against
            job = self.job(spec, trial, rungs=() if key in self.start_keys else None)
            cached = self.cache.get(job) if self.cache is not None else None
            if cached is not None:
                cached.seconds = 0.0  # serving it took no trial
                self._complete(trial_record(trial, "cache", choices, spec, cached, "cache", self.config.objective.score,
                                            latency_ms))
                continue
            self.live[trial_id] = Running(trial, choices, spec, latency_ms, job)
            self.in_flight[key] = trial
            if self.listener:
                self.listener.save_state(self.state())
            return {"trial": trial, "choices": choices, "job": job.to_dict()}
        return DONE

    def _propose(self) -> list[int]:
        """The next start point this run has not recorded, screened or begun; then the controller's proposal."""
        while self.start_points:
            _, choices = self.start_points.pop(0)
            key = tuple(choices)
            if key not in self.evaluated and key not in self.screened and key not in self.in_flight:
                return choices
        return self.controller.ask()

    # -- results
    def complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        """Record trial ``trial_id``'s result (a Measurement's dict; None or ``error``: it failed) and tell the
        controller its reward."""
        if trial_id not in self.live:
            return
        trial, choices, spec, latency_ms, job = self.live.pop(trial_id)
        self.in_flight.pop(tuple(choices), None)
        measured = Measurement.from_result(result)
        if error or result is None or "accuracy" not in result:
            measured = failed(measured.reason or f"the trial's worker errored or died (killed, out of memory, "
                                                 f"or crashed) on each of its {1 + TRIAL_RETRIES} attempts "
                                                 f"(details in {Path(self.config.out) / 'ray.log'})",
                              flops=measured.flops, params=measured.params)
        record = trial_record(trial, trial_id, choices, spec, measured, "trained", self.config.objective.score,
                              latency_ms)
        if record["status"] == "ok" and self.cache is not None:
            self.cache.put(job, measured, run=str(self.config.out))
        self._complete(record)

    def _complete(self, record: TrialRecord) -> None:
        choices = record["choices"]
        key = tuple(choices)
        self.records.append(record)
        if record["status"] in EVALUATED:
            self.evaluated[key] = record
        for _ in range(self.waiting.pop(key, 0) + 1):
            self.controller.tell(choices, record["reward"])
        self.told.add(record["trial"])
        if self.listener:
            self.listener.record(record, self.state())

    # -- a copy of the loop's progress (Tune's checkpoint of its searcher)
    def save(self, path: Path) -> None:
        """Write the controller's state and the records to ``path`` (read back by :meth:`restore`)."""
        from nas.search.run_files import save_state

        save_state(Path(path), {"controller": self.controller.state_dict(), "records": self.records})

    def restore(self, path: Path) -> None:
        from nas.search.run_files import load_state

        state = load_state(Path(path)) or {}
        if "controller" in state:
            self.controller.load_state_dict(state["controller"])
            self._load_records(state["records"])
