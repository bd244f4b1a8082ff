"""The controller as a Ray Tune ``Searcher``: ask, skip duplicates, serve cached results, tell.

It writes no file. Each finished candidate becomes a *record* (one row of ``trials.csv``) handed to a
listener (the run's :class:`~nas.recorder.Recorder`) together with the controller state to save.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

from ray.tune.search import Searcher

from nas.config import SearchConfig
from search_spaces.mnasnet import MnasNetSpace

MAX_DUPLICATES = 200  # consecutive already-evaluated proposals after which the controller has converged
MAX_SCREENED = 2000  # consecutive proposals outside the FLOPs window after which the search gives up
EVALUATED = ("ok", "stopped")  # statuses with a measured accuracy (a stopped trial's is its last rung's)


class Listener(Protocol):
    """Who keeps what the searcher decides (the run directory's recorder)."""

    def record(self, record: dict[str, Any], state: dict[str, Any]) -> None: ...

    def save_state(self, state: dict[str, Any]) -> None: ...


def make_record(trial: int, trial_id: str, choices: list[int], space: MnasNetSpace, config: SearchConfig,
                measured: dict[str, Any], source: str) -> dict[str, Any]:
    """One row of ``trials.csv`` from a candidate's measurements, scored on the driver."""
    status = measured.get("status", "failed")
    if status == "ok" and measured.get("final") is False:
        status = "stopped"  # the scheduler ended it at a rung: its last report is all there is
    accuracy = float(measured.get("accuracy") or 0.0) if status in EVALUATED else 0.0
    flops = int(measured.get("flops") or 0)
    latency_ms = float(measured.get("latency_ms") or 0.0)
    reward = config.score(accuracy, flops, latency_ms) if status in EVALUATED else 0.0
    if not math.isfinite(reward):
        reward = 0.0
    return {
        "trial": trial, "trial_id": trial_id, "choices": list(choices), "summary": space.summary(choices),
        "block_strings": space.decode(choices).block_strings, "flops": flops,
        "params": int(measured.get("params") or 0), "accuracy": accuracy,
        "reward": reward, "status": status, "reason": measured.get("reason") or "",
        "seconds": round(float(measured.get("seconds") or 0.0), 2),
        "train_seconds": round(float(measured.get("train_seconds") or 0.0), 2),
        "images_per_second": round(float(measured.get("images_per_second") or 0.0), 1),
        "final_loss": measured.get("final_loss", ""), "source": source, "steps": int(measured.get("steps") or 0),
        "latency_ms": round(latency_ms, 4) if latency_ms else "",
    }


def screened_reward(records: list[dict[str, Any]]) -> float:
    """What a screened candidate is told: the lowest reward measured so far (0 before any).

    Below every trained candidate, yet on the scale of the rewards the controller sees, so it neither
    drags the RL controllers' baseline down as a 0 would, nor leaves them without a signal (README,
    "Search efficiency": measured on benchmarks/controllers.py against telling 0 and telling nothing).
    """
    measured = [float(r["reward"]) for r in records if r["status"] in EVALUATED]
    return min(measured) if measured else 0.0


def screened_record(trial: int, choices: list[int], space: MnasNetSpace, config: SearchConfig,
                    counts: dict[str, Any], reward: float) -> dict[str, Any]:
    """The row of a candidate the pre-screen kept from training (analytic counts, predicted latency)."""
    lo, hi = config.flops_window
    reasons = []
    if config.target_flops:
        reasons.append(f"{counts['flops'] / 1e6:.0f}M FLOPs (window {lo * config.target_flops / 1e6:g}M-"
                       f"{hi * config.target_flops / 1e6:g}M)")
    if config.target_latency_ms:
        reasons.append(f"{counts['latency_ms']:.1f} ms (window {lo * config.target_latency_ms:g}-"
                       f"{hi * config.target_latency_ms:g} ms)")
    record = make_record(trial, "screened", choices, space, config,
                         {"status": "screened", "flops": counts["flops"], "params": counts["params"],
                          "latency_ms": counts.get("latency_ms"), "reason": "outside the window: " +
                          ", ".join(reasons)}, source="screened")
    record["reward"] = reward
    return record


class ControllerSearcher(Searcher):
    """A Ray Tune Searcher over a MnasNet space that wraps any controller (``ask``/``tell``).

    ``suggest`` asks the controller and puts ``trial``, ``choices`` and the decoded ``spec`` into the trial's
    config. An architecture this run already evaluated is told its recorded reward and not trained again; one
    the result cache knows is recorded with ``source=cache`` and told like any result, without a trial.
    ``on_trial_complete`` scores the trial's measurements with the search's reward and tells the controller
    (reward 0 for a failed or errored trial; a trial a scheduler stopped is told its last rung's reward).

    Before any of that, the FLOPs pre-screen: a proposal whose analytic FLOPs fall outside
    ``config.flops_window`` is recorded with status ``screened``, told :func:`screened_reward`, not trained;
    screened candidates do not count toward ``config.trials``.
    """

    def __init__(self, controller: Any, space: MnasNetSpace, config: SearchConfig, num_classes: int,
                 history: list[dict[str, Any]] | None = None, listener: Listener | None = None,
                 cache: Any = None, duplicates: int = 0) -> None:
        super().__init__(metric="accuracy", mode="max")
        self.controller, self.space, self.config = controller, space, config
        self.num_classes, self.listener, self.cache = num_classes, listener, cache
        self.records: list[dict[str, Any]] = []
        self.evaluated: dict[tuple[int, ...], dict[str, Any]] = {}
        self.told: set[int] = set()  # trials the controller has been told
        self._load_records(list(history or []))
        self.live: dict[str, tuple[int, list[int]]] = {}
        self.in_flight: dict[tuple[int, ...], int] = {}
        self.waiting: dict[tuple[int, ...], int] = {}
        self.duplicates = duplicates  # proposals answered from the records instead of training
        self.converged = False
        self.screened_in_a_row = 0
        self.gave_up_screening = False  # MAX_SCREENED proposals in a row were outside the window
        self.latency_table = None
        if config.latency_table:
            from nas.latency import load_table

            self.latency_table = load_table(config.latency_table, space)

    def predicted_latency(self, choices: list[int]) -> float | None:
        """The latency (ms) the search's table predicts for ``choices``, or None without a table."""
        if self.latency_table is None:
            return None
        return self.latency_table.predict(self._spec(choices, 0))

    def _load_records(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.evaluated = {tuple(r["choices"]): r for r in records if r["status"] in EVALUATED}
        self.screened = {tuple(r["choices"]) for r in records if r["status"] == "screened"}
        self.told = {r["trial"] for r in records}
        # numbered after the highest recorded trial: unique even when a kill lost a lower-numbered one
        self.next_trial = max((int(r["trial"]) for r in records), default=-1) + 1

    def state(self) -> dict[str, Any]:
        """What ``controller.pkl`` holds: the controller, the trials it was told, the duplicates count."""
        return {"controller": self.controller.state_dict(), "told": sorted(self.told),
                "duplicates": self.duplicates}

    @property
    def finished(self) -> int:
        """Candidates evaluated so far (trained, stopped, failed or served from the cache; not screened)."""
        return sum(1 for r in self.records if r["status"] != "screened")

    def _screen(self, choices: list[int]) -> bool:
        """The FLOPs pre-screen: True (recorded and told) when ``choices`` is not to be trained."""
        from nas.profile import profile  # analytic == fvcore exactly (tests/test_profile.py)

        if self.config.flops_window == (0.0, float("inf")):
            return False
        counts: dict[str, Any] = dict(profile(self._spec(choices, 0), method="analytic"))
        counts["latency_ms"] = self.predicted_latency(choices)
        if not self.config.screens(counts["flops"], counts["latency_ms"] or 0.0):
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
        self._complete(screened_record(trial, choices, self.space, self.config, counts, reward))
        return True

    def _spec(self, choices: list[int], trial: int) -> Any:
        return self.space.decode(choices, resolution=self.config.resolution, num_classes=self.num_classes,
                                 name=f"trial-{trial:04d}")

    # -- suggestions
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        duplicates_in_a_row = 0
        while (self.finished + len(self.live) < self.config.trials and not self.converged
               and not self.gave_up_screening):
            choices = self.controller.ask()
            key = tuple(choices)
            if self._screen(choices):
                continue
            if key in self.evaluated or key in self.in_flight:
                duplicates_in_a_row += 1
                self.duplicates += 1
                if key in self.evaluated:  # known: tell the recorded reward, train nothing
                    self.controller.tell(choices, float(self.evaluated[key]["reward"]))
                else:  # being trained now: told when that trial finishes
                    self.waiting[key] = self.waiting.get(key, 0) + 1
                self.converged = duplicates_in_a_row >= MAX_DUPLICATES
                continue
            trial = self.next_trial
            self.next_trial += 1
            spec = self._spec(choices, trial)
            cached = self.cache.get(spec) if self.cache is not None else None
            if cached is not None:
                measured = dict(self._measured_from_cache(spec, cached), latency_ms=self.predicted_latency(choices))
                self._complete(make_record(trial, "cache", choices, self.space, self.config, measured,
                                           source="cache"))
                duplicates_in_a_row = 0
                continue
            self.live[trial_id] = (trial, choices)
            self.in_flight[key] = trial
            if self.listener:
                self.listener.save_state(self.state())
            return {"trial": trial, "choices": choices, "spec": spec.to_dict()}
        return Searcher.FINISHED

    def _measured_from_cache(self, spec: Any, cached: Any) -> dict[str, Any]:
        """The cached measurements, counted again where this search counts at another resolution or class
        count; ``seconds`` 0: serving it took no trial."""
        measured = dict(cached.measured(), seconds=0.0)
        if (cached.resolution, cached.num_classes) != (spec.resolution, spec.num_classes):
            from nas.profile import profile  # analytic == fvcore exactly (tests/test_profile.py)

            counts = profile(spec, method="analytic")
            measured.update(flops=counts["flops"], params=counts["params"])
        return measured

    # -- results
    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id not in self.live:
            return
        trial, choices = self.live.pop(trial_id)
        self.in_flight.pop(tuple(choices), None)
        measured = dict(result or {}, latency_ms=self.predicted_latency(choices))
        if error or "accuracy" not in measured:
            measured.update(status="failed", reason=measured.get("reason") or
                            f"the trial's worker errored (details in {Path(self.config.out) / 'ray.log'})")
        record = make_record(trial, trial_id, choices, self.space, self.config, measured, source="trained")
        if record["status"] == "ok" and self.cache is not None:
            self.cache.put(self._spec(choices, trial), record, run=str(self.config.out))
        self._complete(record)

    def _complete(self, record: dict[str, Any]) -> None:
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

    # -- Tune's own checkpointing of the searcher
    def save(self, checkpoint_path: str) -> None:
        from nas.records import save_state

        save_state(Path(checkpoint_path), {"controller": self.controller.state_dict(), "records": self.records})

    def restore(self, checkpoint_path: str) -> None:
        from nas.records import load_state

        state = load_state(Path(checkpoint_path)) or {}
        if "controller" in state:
            self.controller.load_state_dict(state["controller"])
            self._load_records(state["records"])
