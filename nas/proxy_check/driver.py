"""nas-proxy-check: does the brief proxy training rank architectures the way a longer training does?

Candidates (architectures sampled across a FLOPs window around the target, plus the shipped reference
networks, or a run's best ones) are trained with the proxy budget exactly as nas-search uses it, again with
another seed (the noise ceiling), and with a longer reference budget; each training is a job of the engine,
a Ray Tune trial of the same trainable nas-search uses, through the same runner. The report
(:mod:`nas.proxy_check.report`) is the rank agreement of the proxy with the reference (Kendall tau-b,
Spearman rho, bootstrap intervals, top-k overlap) and with itself.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypedDict

import pandas as pd

from nas.console import say, warn as say_warning
from nas.data.datasets import load_data
from nas.engine.cache import open_cache
from nas.engine.job import Job, Measurement
from nas.engine.runner import Runner, trials_per_gpu
from nas.files import RunLock, atomic_path, atomic_write
from nas.network.counting import profile
from nas.proxy_check.candidates import select_candidates
from nas.proxy_check.config import Candidate, ProxyCheckConfig
from nas.proxy_check.report import held_out_accuracy, in_window, plot, summarize
from nas.report import refresh_report
from nas.search.config import SearchConfig
from nas.timings import timed
from nas.training.proxy_settings import ProxySettings


class CheckRow(TypedDict):
    """One row of proxy_check.csv: one training of one model with one budget."""

    model: int
    name: str
    kind: str
    budget: str
    repeat: int
    seed: int
    steps: int
    train_resolution: int
    flops: int
    params: int
    accuracy: float
    reward: float
    status: str
    reason: str
    seconds: float
    source: str
    block_strings: str
    train_loss: float | None  # the proxy training's mean loss over every step (None: not measured)


COLUMNS = list(CheckRow.__annotations__)


@dataclass(frozen=True)
class CheckJob:
    """A training of the check: which model, which budget (``proxy`` or ``reference``), which repeat."""

    model: int
    budget: str
    repeat: int
    job: Job


def plan_jobs(candidates: list[Candidate], repeats: int, seed: int,
              budgets: dict[str, ProxySettings]) -> list[CheckJob]:
    """Every training of the check. The reference has a seed of its own, never a proxy run's: a proxy run that
    shares the reference's initial weights and batch order is not an independent prediction of it."""
    planned = []
    for index, candidate in enumerate(candidates):
        seeds = [("proxy", repeat, seed + index + 1000 * (repeat + 1)) for repeat in range(1, repeats + 1)]
        if candidate.known is None:  # a reference table's model was trained for real already
            seeds.append(("reference", 1, seed + index + 1000))
        for budget, repeat, job_seed in seeds:
            job = Job(spec=candidate.spec.to_dict(), budget=budgets[budget].recipe(), seed=job_seed, data=budget,
                      train_width=budgets[budget].width,
                      cache_seed=f"proxy-check:{job_seed}")  # a check's own seeds, never a search's
            planned.append(CheckJob(index, budget, repeat, job))
    return planned


def check_row(planned: CheckJob, candidate: Candidate, budget: ProxySettings, search: SearchConfig,
              measured: Measurement, source: str) -> CheckRow:
    """The row of one training with ``budget``, scored with the search's reward."""
    accuracy = float(measured.accuracy or 0.0) if measured.ok else 0.0
    flops = int(measured.flops or 0)
    return {"model": planned.model, "name": candidate.name, "kind": candidate.kind, "budget": planned.budget,
            "repeat": planned.repeat, "seed": planned.job.seed, "steps": budget.steps,
            "train_resolution": budget.resolution, "flops": flops, "params": int(measured.params or 0),
            "accuracy": accuracy, "reward": search.objective.score(accuracy, flops) if measured.ok else 0.0,
            "status": measured.status, "reason": measured.reason or "",
            "seconds": round(float(measured.seconds or 0.0), 2), "source": source,
            "block_strings": " ".join(candidate.spec.block_strings),
            "train_loss": None if measured.train_loss is None else round(float(measured.train_loss), 5)}


def known_row(model: int, candidate: Candidate, config: SearchConfig) -> CheckRow:
    """The reference row of a reference table's model: its test accuracy after real training (the held-out one
    where the table has no test accuracy), scored with the search's reward at the search's resolution."""
    known = candidate.known
    accuracy = known.test_accuracy if known.test_accuracy is not None else known.val_accuracy
    counts = profile(candidate.spec, method="analytic")
    return {"model": model, "name": candidate.name, "kind": candidate.kind, "budget": "reference", "repeat": 1,
            "seed": -1, "steps": 0, "train_resolution": known.spec.resolution, "flops": counts["flops"],
            "params": counts["params"], "accuracy": accuracy,
            "reward": config.objective.score(accuracy, counts["flops"]),
            "status": "ok", "reason": "", "seconds": 0.0, "source": "table",
            "block_strings": " ".join(candidate.spec.block_strings), "train_loss": None}


def write_rows(rows: list[CheckRow], path: Path) -> None:
    """proxy_check.csv, rewritten whole (atomically) as trainings finish."""
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp, index=False)


@dataclass
class Check:
    """A running check: its models, trainings, budgets and data, and the rows so far."""

    config: ProxyCheckConfig
    out: Path
    candidates: list[Candidate]
    planned: list[CheckJob]
    budgets: dict[str, ProxySettings]
    datasets: dict[str, Any]
    rows: list[CheckRow] = dataclasses.field(default_factory=list)

    def keep(self, planned: CheckJob, measured: Measurement, source: str) -> CheckRow:
        row = check_row(planned, self.candidates[planned.model], self.budgets[planned.budget], self.config.search,
                        measured, source)
        self.rows.append(row)
        return row


def open_check(config: ProxyCheckConfig, data: Any) -> Check:
    """The check's budgets (the proxy as nas-search trains it, the reference), data, models and trainings."""
    config.validate(len(data.x_train))
    search = config.search
    out = Path(search.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    reference = config.reference(len(data.x_train))
    proxy = dataclasses.replace(search.proxy, steps=config.proxy_steps(len(data.x_train)), epochs=None)
    reference_data = data
    if reference.resolution != data.resolution and not config.reference_table:  # as nas-search loads it
        reference_data = load_data(proxy.data, reference.resolution, proxy.val_fraction, proxy.seed)
    budgets = {"proxy": proxy, "reference": reference}
    candidates = select_candidates(config, search.objective.num_classes or data.num_classes)
    planned = plan_jobs(candidates, config.repeats, search.proxy.seed, budgets)
    return Check(config, out, candidates, planned, budgets, {"proxy": data, "reference": reference_data})


def save_rows(check: Check, log: Callable[[str], None]) -> None:
    """proxy_check.csv with the trainings so far, and the report page drawn from it."""
    write_rows(check.rows, check.out / "proxy_check.csv")
    refresh_report(check.out, "running", warn=log)


def train_pending(check: Check, pending: list[CheckJob], cache: Any, log: Callable[[str], None]) -> None:
    """Train the trainings the cache did not know, as the engine's jobs; each row written as it finishes."""
    from nas.engine.trainable import JobEvents, JobList

    def keep(config: dict[str, Any], measured: Measurement) -> None:
        planned = pending[config["index"]]
        row = check.keep(planned, measured, "trained")
        save_rows(check, log)
        if cache is not None:
            cache.put(planned.job, measured, run=str(check.out))
        label = planned.budget if planned.budget == "reference" else f"proxy #{planned.repeat}"
        state = f"acc {row['accuracy']:.3f}" if row["status"] == "ok" else f"FAILED: {row['reason']}"
        trained = sum(r["source"] != "table" for r in check.rows)  # a reference table's rows are not trainings
        log(f"[{trained:>3}/{len(check.planned)}] {row['name']:<16} {label:<10} {row['flops'] / 1e6:7.1f}M  "
            f"{state}  ({row['seconds']:.0f}s)")

    events = JobEvents(on_result=keep)  # a worker that errored comes as a failed measurement
    search = check.config.search
    largest = max(budget.resolution for budget in check.budgets.values())
    with Runner.for_settings(search.resources, trials_per_gpu(largest, search.proxy.batch_size),
                             log_file=check.out / "ray.log") as runner:
        log(f"on {runner.where}: {runner.resources.describe()}")
        finished = runner.run(JobList([p.job for p in pending]), check.datasets, storage=check.out / "ray",
                              name=f"check-{time.strftime('%Y%m%d-%H%M%S')}", num_samples=len(pending),
                              callbacks=[events])
    if not finished:
        raise KeyboardInterrupt


def run_proxy_check(config: ProxyCheckConfig, data: Any, log: Callable[[str], None] = say,
                    warn: Callable[[str], None] = say_warning) -> dict[str, Any]:
    """Train every model with both budgets (served from the result cache where known); write the report."""
    with RunLock(config.search.out, "nas-proxy-check"), timed(config.search.out, "nas-proxy-check", "check"):
        return _run_check(config, data, log, warn)


def _run_check(config: ProxyCheckConfig, data: Any, log: Callable[[str], None],
               warn: Callable[[str], None]) -> dict[str, Any]:
    check = open_check(config, data)
    proxy, reference = check.budgets["proxy"], check.budgets["reference"]
    log(f"proxy check: {len(check.candidates)} models ({sum(c.kind == 'reference' for c in check.candidates)} "
        f"reference networks), proxy {proxy.describe()} x {config.repeats} seeds, "
        f"reference {_reference_text(config, reference)}; {len(check.planned)} trainings")
    cache = open_cache(config.search.resources, check.datasets, warn)
    check.rows += [known_row(i, c, config.search) for i, c in enumerate(check.candidates) if c.known is not None]
    pending = []
    for planned in check.planned:
        hit = cache.get(planned.job) if cache is not None else None
        if hit is None:
            pending.append(planned)
        else:
            check.keep(planned, hit, "cache")
    served = sum(row["source"] == "cache" for row in check.rows)
    if served:
        log(f"{served} of {len(check.planned)} trainings served from the result cache")
    save_rows(check, log)
    started = time.perf_counter()
    if pending:
        try:
            train_pending(check, pending, cache, log)
        except BaseException:
            refresh_report(check.out, "interrupted")  # the page stops reloading
            raise
    if cache is not None:
        cache.close()
    return write_report(check, time.perf_counter() - started)


def write_report(check: Check, seconds: float) -> dict[str, Any]:
    """proxy_check.csv sorted, proxy_check.json (the figures and the configuration) and proxy_check.png."""
    config, proxy, reference = check.config, check.budgets["proxy"], check.budgets["reference"]
    frame = pd.DataFrame(check.rows, columns=COLUMNS).sort_values(["model", "budget", "repeat"]).reset_index(drop=True)
    write_rows(frame.to_dict("records"), check.out / "proxy_check.csv")
    figures = summarize(frame, config.repeats)
    if config.reference_table:
        figures.update(held_out_accuracy(frame, check.candidates))
    if config.search.objective.target_flops:
        figures.update(in_window(frame, *(f * config.search.objective.target_flops for f in config.window)))
    figures.update(config={"proxy": proxy.to_dict(), "reference_steps": reference.steps,
                           "reference_resolution": reference.resolution, "repeats": config.repeats,
                           "models": config.models, "window": list(config.window), "from": config.from_run,
                           "reference_table": config.reference_table},
                   wall_seconds=round(seconds, 1))
    atomic_write(check.out / "proxy_check.json", json.dumps(figures, indent=2) + "\n")
    plot(frame, figures, check.out / "proxy_check.png",
         f"proxy {proxy.describe()} vs {_reference_text(config, reference)}, "
         f"{figures['ranked']} models")
    refresh_report(check.out, "finished")  # a page that cannot be written was warned about while they ran
    return figures


def _reference_text(config: ProxyCheckConfig, reference: ProxySettings) -> str:
    if config.reference_table:
        return f"the real trainings of {Path(config.reference_table).name}"
    return reference.describe()
