"""nas-proxy-check: does the brief proxy training rank architectures the way a longer training does?

Candidates (architectures sampled across a FLOPs window around the target, plus the shipped reference
networks, or a run's best ones) are trained with the proxy budget exactly as nas-search uses it, again with
another seed (the noise ceiling), and with a longer reference budget; each training is a Ray Tune trial of
the same trial code, through the same runner. The report is the rank agreement of the proxy with the
reference (Kendall tau-b, Spearman rho, bootstrap intervals, top-k overlap) and with itself.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from nas.console import say
from nas.search.config import SearchConfig
from nas.errors import UserInputError
from nas.files import atomic_path, atomic_write
from nas.proxy_check.rank_stats import bootstrap_interval, kendall_tau_b, spearman_rho, top_k_overlap
from nas.search.run_files import save_plot
from search_spaces.spec import ArchSpec, load_spec

REFERENCES = Path(__file__).resolve().parents[1] / "search_spaces" / "references"
COLUMNS = ["model", "name", "kind", "budget", "repeat", "seed", "steps", "train_resolution", "flops", "params",
           "accuracy", "reward", "status", "reason", "seconds", "source", "block_strings"]
MIN_MODELS = 4


@dataclass
class ProxyCheckConfig:
    """A proxy check: the proxy as nas-search would train (``search``), and the reference to compare with."""

    search: SearchConfig
    models: int = 16
    reference_steps: int | None = None  # default: 10 x the proxy's steps
    reference_resolution: int | None = None  # default: the proxy's resolution
    repeats: int = 2
    from_run: str | None = None
    window: tuple[float, float] = (0.5, 1.5)  # sampled models' FLOPs, as fractions of the target
    references: bool = True  # add the shipped reference networks

    def proxy_steps(self, num_train: int) -> int:
        return self.search.budget().total_steps(num_train)

    def reference(self, num_train: int) -> SearchConfig:
        """The reference budget as a SearchConfig: the proxy's, trained longer (and optionally larger)."""
        steps = self.reference_steps or 10 * self.proxy_steps(num_train)
        return dataclasses.replace(self.search, steps=steps, epochs=None,
                                   proxy_resolution=self.reference_resolution or self.search.proxy_resolution)

    def validate(self, num_train: int) -> None:
        """User errors, one line each: too few models, a reference no larger than the proxy, a bad --from."""
        if self.models < MIN_MODELS:
            raise UserInputError(f"--models {self.models}: at least {MIN_MODELS} are needed to rank anything")
        if self.repeats < 1:
            raise UserInputError(f"--repeats {self.repeats}: at least 1")
        proxy_steps = self.proxy_steps(num_train)
        reference = self.reference(num_train)
        if reference.steps <= proxy_steps and reference.proxy_resolution <= self.search.proxy_resolution:
            raise UserInputError(f"--reference-steps {reference.steps}: the reference budget must be larger than "
                                 f"the proxy's ({proxy_steps} steps at {self.search.proxy_resolution}px)")
        if self.from_run is not None and not (Path(self.from_run) / "trials.csv").is_file():
            raise UserInputError(f"--from {self.from_run}: not a nas-search run (no trials.csv there)")


@dataclass
class Candidate:
    """One architecture of the check."""

    name: str
    kind: str  # sampled | reference | from-run
    spec: ArchSpec


# --------------------------------------------------------------------------------------------- candidates
def sample_stratified(config: ProxyCheckConfig, num_classes: int, count: int, seed: int,
                      exclude: set[str] | None = None) -> list[Candidate]:
    """``count`` architectures of the space with analytic FLOPs spread evenly (log scale) over the window.

    One per FLOPs stratum, drawn by rejection from the space; a stratum the space cannot reach within the
    attempt bound takes the closest architecture drawn.
    """
    from nas.network.counting import profile
    from search_spaces.mnasnet import MnasNetSpace

    space, search = MnasNetSpace(), config.search
    low, high = (math.log(f * search.target_flops) for f in config.window)
    edges = np.linspace(low, high, count + 1)
    rng = np.random.default_rng(seed)
    seen = set(exclude or ())
    chosen: list[Candidate] = []
    for stratum in range(count):
        best, best_distance = None, float("inf")
        middle = (edges[stratum] + edges[stratum + 1]) / 2
        for _ in range(4000):
            spec = space.decode(space.sample(rng), resolution=search.resolution, num_classes=num_classes)
            if " ".join(spec.block_strings) in seen:
                continue
            flops = math.log(profile(spec, method="analytic")["flops"])
            if edges[stratum] <= flops <= edges[stratum + 1]:
                best = spec
                break
            if abs(flops - middle) < best_distance:
                best, best_distance = spec, abs(flops - middle)
        if best is not None:
            seen.add(" ".join(best.block_strings))
            chosen.append(Candidate(f"sampled-{stratum:02d}", "sampled", best.replace(name=f"sampled-{stratum:02d}")))
    return chosen


def reference_candidates(search: SearchConfig, num_classes: int) -> list[Candidate]:
    """The shipped reference networks at the search's resolution and class count."""
    out = []
    for path in sorted(REFERENCES.glob("*.json")):
        spec = load_spec(path).replace(resolution=search.resolution, num_classes=num_classes)
        out.append(Candidate(path.stem, "reference", spec))
    return out


def run_candidates(config: ProxyCheckConfig, num_classes: int) -> list[Candidate]:
    """A run's best half of ``--models`` by reward (trained ones), the rest sampled from the space."""
    from nas.search.driver import load_history
    from search_spaces.mnasnet import MnasNetSpace

    space = MnasNetSpace()
    records = sorted((r for r in load_history(Path(config.from_run)) if r["status"] == "ok"),
                     key=lambda r: -r["reward"])
    best = []
    for record in records[: max(1, config.models // 2)]:
        spec = space.decode(record["choices"], resolution=config.search.resolution, num_classes=num_classes,
                            name=f"trial-{int(record['trial']):04d}")
        best.append(Candidate(spec.name, "from-run", spec))
    seen = {" ".join(c.spec.block_strings) for c in best}
    return best + sample_stratified(config, num_classes, config.models - len(best), config.search.seed, seen)


def select_candidates(config: ProxyCheckConfig, num_classes: int) -> list[Candidate]:
    """The models of the check, in a fixed order for a given configuration."""
    if config.from_run:
        chosen = run_candidates(config, num_classes)
    else:
        chosen = sample_stratified(config, num_classes, config.models, config.search.seed)
    if config.references:
        chosen += reference_candidates(config.search, num_classes)
    return chosen


# --------------------------------------------------------------------------------------------- trials
def run_check_trial(trial_config: dict[str, Any], jobs: list[dict[str, Any]] | None = None,
                    budgets: dict[str, tuple[SearchConfig, Any]] | None = None) -> None:
    """One training of the check as a Ray Tune trial: the same measurement code as nas-search's trials."""
    from ray import tune

    from nas.engine.measure import evaluate_candidate

    job = jobs[trial_config["job"]]
    config, data = budgets[job["budget"]]
    tune.report({"job": trial_config["job"], **evaluate_candidate(job["spec"], data, config, seed=job["seed"])})


def _jobs(candidates: list[Candidate], repeats: int, seed: int) -> list[dict[str, Any]]:
    """Every training of the check. The reference has a seed of its own, never a proxy run's: a proxy run that
    shares the reference's initial weights and batch order is not an independent prediction of it."""
    jobs = []
    for index, candidate in enumerate(candidates):
        for repeat in range(1, repeats + 1):
            jobs.append({"model": index, "budget": "proxy", "repeat": repeat,
                         "seed": seed + index + 1000 * (repeat + 1)})
        jobs.append({"model": index, "budget": "reference", "repeat": 1, "seed": seed + index + 1000})
    for job in jobs:
        job["spec"] = candidates[job["model"]].spec.to_dict()
    return jobs


def _row(job: dict[str, Any], candidate: Candidate, config: SearchConfig, measured: dict[str, Any],
         source: str) -> dict[str, Any]:
    ok = measured.get("status") == "ok"
    accuracy = float(measured.get("accuracy") or 0.0) if ok else 0.0
    flops = int(measured.get("flops") or 0)
    return {"model": job["model"], "name": candidate.name, "kind": candidate.kind, "budget": job["budget"],
            "repeat": job["repeat"], "seed": job["seed"], "steps": config.steps,
            "train_resolution": config.proxy_resolution, "flops": flops, "params": int(measured.get("params") or 0),
            "accuracy": accuracy, "reward": config.score(accuracy, flops) if ok else 0.0,
            "status": measured.get("status", "failed"), "reason": measured.get("reason") or "",
            "seconds": round(float(measured.get("seconds") or 0.0), 2), "source": source,
            "block_strings": " ".join(candidate.spec.block_strings)}


# --------------------------------------------------------------------------------------------- report
def _interval(statistic: Callable[..., float], x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    value = statistic(x, y)
    low, high = bootstrap_interval(statistic, x, y)
    return {"value": _finite(value), "interval90": [_finite(low), _finite(high)]}


def _finite(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


def summarize(rows: pd.DataFrame, repeats: int) -> dict[str, Any]:
    """The check's figures from its rows (one per model and budget): see the module docstring."""
    proxy = rows[(rows["budget"] == "proxy") & (rows["repeat"] == 1)].set_index("model")
    reference = rows[rows["budget"] == "reference"].set_index("model")
    both = proxy.index.intersection(reference.index)
    good = [m for m in both if proxy.loc[m, "status"] == "ok" and reference.loc[m, "status"] == "ok"]
    figures: dict[str, Any] = {"models": int(rows["model"].nunique()), "ranked": len(good),
                               "left_out": int(rows["model"].nunique()) - len(good)}
    if len(good) >= 2:
        for what in ("accuracy", "reward"):
            x, y = proxy.loc[good, what].to_numpy(float), reference.loc[good, what].to_numpy(float)
            k = max(1, round(0.25 * len(good)))
            figures[what] = {"kendall_tau_b": _interval(kendall_tau_b, x, y),
                             "spearman_rho": _interval(spearman_rho, x, y),
                             "top_k": k, "top_k_overlap": round(top_k_overlap(x, y, k), 4)}
    per_seed = _per_seed(rows, reference, repeats)
    if per_seed:
        figures.update(per_seed)
    if repeats >= 2:
        again = rows[(rows["budget"] == "proxy") & (rows["repeat"] == 2)].set_index("model")
        pair = [m for m in proxy.index.intersection(again.index)
                if proxy.loc[m, "status"] == "ok" and again.loc[m, "status"] == "ok"]
        if len(pair) >= 2:
            x, y = proxy.loc[pair, "accuracy"].to_numpy(float), again.loc[pair, "accuracy"].to_numpy(float)
            figures["seed_to_seed"] = {"kendall_tau_b": _interval(kendall_tau_b, x, y),
                                       "mean_abs_accuracy_difference": round(float(np.mean(np.abs(x - y))), 4)}
    ok = rows[rows["status"] == "ok"]
    proxy_seconds = ok[ok["budget"] == "proxy"]["seconds"].mean()
    reference_seconds = ok[ok["budget"] == "reference"]["seconds"].mean()
    if proxy_seconds > 0 and np.isfinite(reference_seconds):
        figures["seconds"] = {"proxy_mean": round(float(proxy_seconds), 2),
                              "reference_mean": round(float(reference_seconds), 2),
                              "cost_ratio": round(float(reference_seconds / proxy_seconds), 2)}
    figures["verdict"] = verdict(figures)
    return figures


def _per_seed(rows: pd.DataFrame, reference: pd.DataFrame, repeats: int) -> dict[str, Any]:
    """Tau of each proxy seed against the reference, and of the proxy averaged over the seeds.

    One proxy run is what a search uses, but its tau is itself noisy: the spread over seeds shows how much,
    and the averaged proxy shows what averaging seeds (one of the levers to steady a proxy) buys.
    """
    if repeats < 2:
        return {}
    accuracy: dict[int, pd.Series] = {}
    taus = []
    for repeat in range(1, repeats + 1):
        frame = rows[(rows["budget"] == "proxy") & (rows["repeat"] == repeat)].set_index("model")
        good = [m for m in frame.index.intersection(reference.index)
                if frame.loc[m, "status"] == "ok" and reference.loc[m, "status"] == "ok"]
        accuracy[repeat] = frame.loc[good, "accuracy"].astype(float)
        taus.append(_finite(kendall_tau_b(accuracy[repeat], reference.loc[good, "accuracy"])) if len(good) >= 2
                    else None)
    common = sorted(set.intersection(*(set(a.index) for a in accuracy.values())))
    out: dict[str, Any] = {"per_seed_kendall_tau_b": taus}
    if len(common) >= 2:
        averaged = np.mean([accuracy[r].loc[common].to_numpy() for r in accuracy], axis=0)
        target = reference.loc[common, "accuracy"].to_numpy(float)
        out["averaged_proxy"] = {"seeds": repeats, "kendall_tau_b": _interval(kendall_tau_b, averaged, target),
                                 "spearman_rho": _interval(spearman_rho, averaged, target)}
    return out


def verdict(figures: dict[str, Any]) -> str:
    """One plain line: how well one proxy run ranks, by Kendall's tau of accuracy (the mean over seeds where
    there are several, since one seed's tau is itself noisy) and the first seed's interval."""
    if "accuracy" not in figures:
        return f"too few models ranked ({figures['ranked']}) to judge the proxy"
    tau = figures["accuracy"]["kendall_tau_b"]
    value, (low, high) = tau["value"], tau["interval90"]
    if value is None:
        return "the proxy or the reference gave every model the same accuracy: no ranking to judge"
    seeds = [t for t in figures.get("per_seed_kendall_tau_b", []) if t is not None]
    if len(seeds) >= 2:
        value = float(np.mean(seeds))
        head = (f"tau {value:.2f} (by seed: {', '.join(f'{t:.2f}' for t in seeds)}; "
                f"seed 1's 90% interval [{low:.2f}, {high:.2f}])")
    else:
        head = f"tau {value:.2f} [{low:.2f}, {high:.2f}]"
    if value >= 0.5 and low is not None and low >= 0.5:
        text = "the proxy ranks these architectures well"
    elif value >= 0.5:
        text = "the proxy ranks these architectures well, but the interval is wide: check more models"
    elif value >= 0.3:
        text = "the proxy ranks these architectures roughly: more steps or repeats would help"
    else:
        text = "the proxy does not rank these architectures: a search on it learns mostly noise"
    seed = figures.get("seed_to_seed", {}).get("kendall_tau_b", {}).get("value")
    if seed is not None and seed < 0.5:
        text += f" (the proxy agrees with itself across seeds only at tau {seed:.2f})"
    averaged = figures.get("averaged_proxy", {}).get("kendall_tau_b", {}).get("value")
    if averaged is not None and averaged > value + 0.1:
        text += f"; averaging {figures['averaged_proxy']['seeds']} seeds ranks at tau {averaged:.2f}"
    return f"{head}: {text}"


def plot(rows: pd.DataFrame, figures: dict[str, Any], path: Path, title: str) -> None:
    """Proxy against reference accuracy, one point per model, the diagonal, each model's reference rank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    proxy = rows[(rows["budget"] == "proxy") & (rows["repeat"] == 1) & (rows["status"] == "ok")].set_index("model")
    reference = rows[(rows["budget"] == "reference") & (rows["status"] == "ok")].set_index("model")
    models = proxy.index.intersection(reference.index)
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    x, y = proxy.loc[models, "accuracy"].to_numpy(float), reference.loc[models, "accuracy"].to_numpy(float)
    kinds = proxy.loc[models, "kind"].to_numpy()
    for kind, colour in (("sampled", "#4f6d7a"), ("from-run", "#d1495b"), ("reference", "#edae49")):
        mask = kinds == kind
        if mask.any():
            ax.scatter(x[mask], y[mask], s=40, color=colour, edgecolor="black", label=kind, zorder=3)
    ranks = (-y).argsort().argsort() + 1
    for xi, yi, rank in zip(x, y, ranks):
        ax.annotate(str(rank), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    top = max([0.0, *x, *y]) * 1.05 + 0.01
    ax.plot([0, top], [0, top], "--", color="gray", lw=1, label="diagonal")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("proxy accuracy (held out)")
    ax.set_ylabel("reference accuracy (held out); labels: reference rank")
    seed = figures.get("seed_to_seed", {}).get("kendall_tau_b", {}).get("value")
    subtitle = figures["verdict"].split(": ")[0] + (f"; seed-to-seed tau {seed:.2f}" if seed is not None else "")
    ax.set_title(f"{title}\nproxy vs reference accuracy: {subtitle}", fontsize=9)
    save_plot(fig, ax, path)


# --------------------------------------------------------------------------------------------- orchestration
def run_proxy_check(config: ProxyCheckConfig, data: Any, log: Callable[[str], None] = say,
                    warn: Callable[[str], None] = say) -> dict[str, Any]:
    """Train every candidate with both budgets (served from the result cache where known); write the report."""
    from ray import tune

    from nas.engine.cache import ResultCache, default_cache_path, proxy_fingerprint
    from nas.data.datasets import load_data
    from nas.engine.runner import Runner, trials_per_gpu
    from nas.engine.measure import TRAINER_VERSION

    config.validate(len(data.x_train))
    search = config.search
    out = Path(search.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    num_classes = search.num_classes or data.num_classes
    reference = config.reference(len(data.x_train))
    proxy_config = dataclasses.replace(search, steps=config.proxy_steps(len(data.x_train)), epochs=None)
    reference_data = data
    if reference.proxy_resolution != data.resolution:  # loaded as nas-search would load it at that resolution
        reference_data = load_data(search.data, reference.proxy_resolution, search.val_fraction, search.seed)
    budgets = {"proxy": (proxy_config, data), "reference": (reference, reference_data)}
    candidates = select_candidates(config, num_classes)
    jobs = _jobs(candidates, config.repeats, search.seed)
    log(f"proxy check: {len(candidates)} models ({sum(c.kind == 'reference' for c in candidates)} reference "
        f"networks), proxy {proxy_config.steps} steps at {proxy_config.proxy_resolution}px x {config.repeats} "
        f"seeds, reference {reference.steps} steps at {reference.proxy_resolution}px; {len(jobs)} trainings")

    cache = None if search.no_cache else ResultCache(search.cache or default_cache_path(), "", warn=warn)
    fingerprints: dict[tuple[str, int], str] = {}

    def fingerprint(job: dict[str, Any]) -> str:
        """The cache's proxy key of a job: its budget, its data, its seed (salted: a check's own seeds)."""
        key = (job["budget"], job["seed"])
        if key not in fingerprints:
            cfg, arrays = budgets[job["budget"]]
            fingerprints[key] = proxy_fingerprint(arrays, cfg.budget().to_dict(), f"proxy-check:{job['seed']}",
                                                  TRAINER_VERSION)
        return fingerprints[key]

    rows: list[dict[str, Any]] = []
    pending = []
    for index, job in enumerate(jobs):
        hit = cache.get(candidates[job["model"]].spec, fingerprint(job)) if cache is not None else None
        if hit is None:
            pending.append(index)
            continue
        rows.append(_row(job, candidates[job["model"]], budgets[job["budget"]][0], hit.measured(), "cache"))
    if rows:
        log(f"{len(rows)} of {len(jobs)} trainings served from the result cache")
    write_rows(rows, out / "proxy_check.csv")

    def keep(job_index: int, measured: dict[str, Any]) -> None:
        job = jobs[job_index]
        candidate, cfg = candidates[job["model"]], budgets[job["budget"]][0]
        row = _row(job, candidate, cfg, measured, "trained")
        rows.append(row)
        write_rows(rows, out / "proxy_check.csv")
        if cache is not None and row["status"] == "ok":
            cache.put(candidate.spec, row, run=str(out), proxy=fingerprint(job))
        label = job["budget"] if job["budget"] == "reference" else f"proxy #{job['repeat']}"
        state = f"acc {row['accuracy']:.3f}" if row["status"] == "ok" else f"FAILED: {row['reason']}"
        log(f"[{len(rows):>3}/{len(jobs)}] {candidate.name:<16} {label:<10} {row['flops'] / 1e6:7.1f}M  "
            f"{state}  ({row['seconds']:.0f}s)")

    class Progress(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            keep(result["job"], result)

        def on_trial_error(self, iteration, trials, trial, **info):
            keep(trial.config["job"], {"status": "failed",
                                       "reason": "the trial's worker errored (details in ray.log)"})

    started = time.perf_counter()
    if pending:
        largest = max(cfg.proxy_resolution for cfg, _ in budgets.values())
        with Runner(search.address, search.debug, search.gpus_per_trial, search.cpus_per_trial,
                    search.concurrency, trials_per_gpu(largest, search.batch_size),
                    log_file=out / "ray.log") as runner:
            res = runner.resources
            log(f"on {runner.where}: {res.describe()}")
            budgets = {name: (cfg.with_resources(res.cpus, res.gpus, res.concurrency), arrays)
                       for name, (cfg, arrays) in budgets.items()}
            finished = runner.run(tune.with_parameters(run_check_trial, jobs=jobs, budgets=budgets),
                                  storage=out / "ray", name=f"check-{time.strftime('%Y%m%d-%H%M%S')}",
                                  param_space={"job": tune.grid_search(pending)}, callbacks=[Progress()])
        if not finished:
            raise KeyboardInterrupt
    if cache is not None:
        cache.close()
    frame = pd.DataFrame(rows, columns=COLUMNS).sort_values(["model", "budget", "repeat"]).reset_index(drop=True)
    write_rows(frame.to_dict("records"), out / "proxy_check.csv")
    figures = summarize(frame, config.repeats)
    figures.update(config={"proxy": proxy_config.to_dict(), "reference_steps": reference.steps,
                           "reference_resolution": reference.proxy_resolution, "repeats": config.repeats,
                           "models": config.models, "window": list(config.window), "from": config.from_run},
                   wall_seconds=round(time.perf_counter() - started, 1))
    import json

    atomic_write(out / "proxy_check.json", json.dumps(figures, indent=2) + "\n")
    plot(frame, figures, out / "proxy_check.png",
         f"proxy {proxy_config.steps} steps @{proxy_config.proxy_resolution}px vs reference {reference.steps} "
         f"steps @{reference.proxy_resolution}px, {figures['ranked']} models")
    return figures


def write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    """proxy_check.csv, rewritten whole (atomically) as trainings finish."""
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp, index=False)
