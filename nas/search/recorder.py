"""The run directory's recorder: trials.csv, controller.pt, best_b0.json, the Pareto plot, report.html and
progress lines.

Driven by the searcher's records as candidates finish, so a killed search loses at most the trials in
flight, and ``--resume`` continues from what is written here.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from nas.console import say
from nas.files import save_spec
from nas.latency.tables import describe_device, measure_spec, runtime_of
from nas.report import refresh_report
from nas.versions import versions
from nas.search.config import SearchConfig
from nas.search.pareto import plot_pareto
from nas.search.run_files import STATE_FILE, append_trial, append_trials, read_trials, rewrite_trials, save_state
from nas.search.start_points import resolve_start_points
from nas.search.trial_record import TrialRecord
from search_spaces.mnasnet import MnasNetSpace

SCREENED_BATCH = 200  # screened candidates written to trials.csv together (see Recorder.record)


def _rank(record: dict[str, Any]) -> tuple[float, int]:
    return record["reward"], -record["trial"]


def best_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The highest-reward successful record (the earliest on ties)."""
    ok = [r for r in records if r["status"] == "ok"]
    return max(ok, key=_rank) if ok else None


def write_best(run_dir: Path, space: MnasNetSpace, config: SearchConfig, num_classes: int,
               record: TrialRecord, latency_table: Any = None, measure: bool = False,
               start_point: str | None = None) -> None:
    """Write ``best_b0.json``: the best architecture as a B0 spec with metrics and provenance (``start_point``:
    the name of the start point it is, if any); with a latency objective its predicted latency, and with
    ``measure`` (at the end, with no trial running) its latency measured here when this machine is the table's
    device."""
    spec = config.decoder(num_classes, space)(record["choices"], name=f"{Path(config.out).name}-b0")
    metrics = {"flops": record["flops"], "params": record["params"], "proxy_accuracy": record["accuracy"],
               "reward": record["reward"]}
    if record.get("latency_ms"):
        metrics.update(best_latency(spec, latency_table, float(record["latency_ms"]), measure))
    spec = spec.replace(
        metrics=metrics,
        provenance={**spec.provenance, "tool": "nas-search", "target_flops": config.objective.target_flops,
                    "target_latency_ms": config.objective.target_latency_ms, "reward_mode": config.objective.reward,
                    "w": config.objective.w, "controller": config.controller, "trial": record["trial"],
                    "trial_id": record["trial_id"], "source": record.get("source", "trained"),
                    "choices": list(record["choices"]),
                    "start_point": start_point,
                    "proxy_data": config.proxy.data,
                    "proxy_resolution": config.proxy.resolution, "budget": config.proxy.recipe().to_dict(),
                    "seed": config.proxy.seed, "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    save_spec(spec, run_dir / "best_b0.json")


def best_latency(spec: Any, table: Any, predicted_ms: float, measure: bool) -> dict[str, Any]:
    """The best candidate's latency figures: predicted, the table's device, and (``measure``, when this
    machine is that device) measured afresh here."""
    out: dict[str, Any] = {"predicted_latency_ms": round(predicted_ms, 4), "latency_device": table.device}
    device = table.device
    here = describe_device(device["kind"], device["threads"], device["batch_size"], runtime_of(device))
    if measure and table.matches(here):
        out["measured_latency_ms"] = round(measure_spec(spec.replace(num_classes=table.num_classes),
                                                        here["kind"], here["threads"], here["batch_size"],
                                                        min_run_time=0.5, runtime=runtime_of(device)).median_ms, 4)
    return out


class Recorder:
    """Writes each record as it comes (append + fsync), the controller state, and the best spec."""

    def __init__(self, run_dir: Path, config: SearchConfig, space: MnasNetSpace, num_classes: int,
                 history: list[TrialRecord] | None = None, log: Callable[[str], None] = say,
                 on_record: Callable[[TrialRecord], None] | None = None, latency_table: Any = None,
                 start_points: Sequence[tuple[str, Sequence[int]]] | None = None) -> None:
        self.run_dir, self.config, self.space, self.num_classes, self.log = run_dir, config, space, num_classes, log
        if start_points is None:  # (name, choices) of the search's start points, resolved once
            start_points = resolve_start_points(config.start_from, space, config.sizing(num_classes))
        self.start_names = {tuple(choices): name for name, choices in start_points}
        self.latency_table = latency_table  # the search's table (loaded once by the driver), or None
        self.on_record = on_record  # told of every record kept (the progress display)
        self.count, self.screened = 0, 0  # candidates evaluated (trained, stopped, failed, cached); screened
        self._screened_rows: list[dict[str, Any]] = []  # screened candidates not yet written (see record)
        self._screened_state: dict[str, Any] = {}
        self._count(history or [])
        self.best = best_record(list(history or []))
        self._report_failed = False

    def _write_best(self, record: TrialRecord, measure: bool = False) -> None:
        write_best(self.run_dir, self.space, self.config, self.num_classes, record, self.latency_table, measure,
                   start_point=self.start_names.get(tuple(record["choices"])))

    def write_report(self, state: str) -> None:
        """Rewrite report.html (``state``: running, finished, interrupted); a failure warns once."""
        problem = refresh_report(self.run_dir, state)
        if problem and not self._report_failed:
            self.log(f"warning: {problem}")
        self._report_failed = self._report_failed or bool(problem)

    def _count(self, records: list[dict[str, Any]]) -> None:
        self.screened = sum(1 for r in records if r["status"] == "screened")
        self.count = len(records) - self.screened

    @property
    def trials_csv(self) -> Path:
        return self.run_dir / "trials.csv"

    def rescored(self, records: list[dict[str, Any]]) -> None:
        """Replace the whole history (rescored under a new reward): trials.csv and best_b0.json."""
        rewrite_trials(self.trials_csv, records)
        self._count(records)
        self.best = best_record(records)
        if self.best is not None:
            self._write_best(self.best)

    def save_state(self, state: dict[str, Any]) -> None:
        save_state(self.run_dir / STATE_FILE, state)

    def record(self, record: dict[str, Any], state: dict[str, Any]) -> None:
        """Keep one finished candidate: its row, the controller state after it, the best spec if it is best.

        Screened candidates (no training) are kept in batches of SCREENED_BATCH, written with the next trained
        one or at the end: a controller that proposes thousands outside the window is not held up by a disk
        write and a state file per proposal. A kill loses at most a batch of them, which are screened again.
        """
        if record["status"] == "screened":  # no line of its own: the next trained line counts them
            self.screened += 1
            self._screened_rows.append(record)
            self._screened_state = state
            if len(self._screened_rows) >= SCREENED_BATCH:
                self.flush()
            return
        self.flush()
        append_trial(self.trials_csv, record)
        self.save_state(state)
        self.count += 1
        if self.on_record is not None:
            self.on_record(record)
        if record["status"] == "ok" and (self.best is None or _rank(record) > _rank(self.best)):
            self.best = record
            self._write_best(record)
        self.log(self.progress_line(record))
        self.write_report("running")

    def progress_line(self, record: dict[str, Any]) -> str:
        """``trial   6 finished  M6k3·16x2 ...  412.0M  acc 0.398  reward 0.5698  best 0.5698  (31s)  [7/16 done]``:
        numbered as in trials.csv, the count of candidates done after it."""
        best = self.best["reward"] if self.best else 0.0
        screened = f", {self.screened} screened" if self.screened else ""
        tail = f"[{self.count}/{self.config.trials} done{screened}]"
        status = record["status"]
        cached = record.get("source") == "cache"
        verb = {"failed": "FAILED", "stopped": "stopped"}.get(status, "cached" if cached else "finished")
        head = f"trial {record['trial']:>3} {verb:<8}  {record['summary']}"
        if status == "failed":
            return f"{head}  {record['reason']}  best {best:.4f}  {tail}"
        where = "from the cache" if cached else f"{record['seconds']:.0f}s"
        if status == "stopped":
            where += f", stopped at step {record['steps']}"
        latency = f"  {float(record['latency_ms']):.1f} ms" if record.get("latency_ms") else ""
        return (f"{head}  {record['flops'] / 1e6:6.1f}M{latency}  acc {record['accuracy']:.3f}  "
                f"reward {record['reward']:.4f}  best {best:.4f}  ({where})  {tail}")

    def flush(self) -> None:
        """Write the screened candidates kept back, and the controller state after the last of them."""
        if not self._screened_rows:
            return
        append_trials(self.trials_csv, self._screened_rows)
        self.save_state(self._screened_state)
        self._screened_rows, self._screened_state = [], {}

    def finalize(self, state: str = "finished") -> pd.DataFrame:
        """Write the Pareto plot from trials.csv and the page (``state``: finished or interrupted); return the
        trials as a DataFrame."""
        self.flush()
        frame = read_trials(self.trials_csv)
        config = self.config
        by_latency = bool(config.objective.target_latency_ms)
        if by_latency and self.best is not None:  # the best's latency, measured now that no trial runs
            self._write_best(self.best, measure=True)
        plot_pareto(frame, config.objective.target_latency_ms if by_latency else config.objective.target_flops,
                    self.run_dir / "pareto.png", window=config.objective.window,
                    title=f"{Path(config.out).name}: {config.controller}, target {config.objective.describe_target()}",
                    x="latency_ms" if by_latency else "flops")
        self.write_report(state)
        return frame
