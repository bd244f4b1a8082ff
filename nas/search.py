"""The search on Ray Tune: one trial per candidate, the controller wrapped as a Tune ``Searcher``.

The run directory's ``trials.csv`` and controller state are written by the driver as each trial finishes,
so a killed search loses at most the trials in flight, and ``--resume`` continues from them.
"""
from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

from ray.tune.search import Searcher  # noqa: E402

from controllers import make_controller  # noqa: E402
from nas import __version__  # noqa: E402
from nas.errors import UserInputError  # noqa: E402
from nas.records import (append_trial, load_state, plot_pareto, read_trials, save_state,  # noqa: E402
                         write_json)
from nas.reward import mnas_reward  # noqa: E402
from search_spaces.mnasnet import MnasNetSpace  # noqa: E402

MAX_DUPLICATES = 200  # consecutive already-evaluated proposals after which the controller has converged


@dataclass
class SearchConfig:
    """Everything that defines one search; written to ``search.json`` first."""

    target_flops: int
    out: str
    controller: str = "ppo"
    trials: int = 16
    epochs: float | None = None
    steps: int | None = 300
    batch_size: int = 64
    lr: float = 0.1
    data: str = "synthetic"
    val_fraction: float = 0.2
    proxy_resolution: int = 32
    resolution: int = 224
    num_classes: int | None = None
    reward: str = "soft"
    w: float = -0.07
    seed: int = 0
    address: str | None = None
    gpus_per_trial: float | None = None
    cpus_per_trial: float | None = None
    concurrency: int | None = None
    fail_trial: int | None = None  # testing aid: trial number whose training raises
    controller_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def versions() -> dict[str, str]:
    import fvcore
    import numpy
    import ray
    import torch

    return {"nas-toolkit": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "ray": ray.__version__, "numpy": numpy.__version__,
            "fvcore": getattr(fvcore, "__version__", "unknown")}


# --------------------------------------------------------------------------------------------- trial side
def trial_device(settings: dict[str, Any]) -> str:
    """Set this trial's torch threads to its CPU request and return its device ("cuda" with a GPU request)."""
    import torch

    torch.set_num_threads(max(1, int(settings.get("cpus_per_trial") or 1)))
    return "cuda" if settings.get("gpus_per_trial") and torch.cuda.is_available() else "cpu"


def run_trial(config: dict[str, Any], data: Any = None, settings: dict[str, Any] | None = None) -> None:
    """One Ray Tune trial: FLOPs and params with fvcore, brief proxy training, MnasNet reward, report.

    Every failure inside is reported as a failed trial (reward 0) rather than raised, so that one bad
    candidate never stops the search.
    """
    from ray import tune

    from nas.profile import profile
    from nas.spec import load_spec
    from nas.train import TrainBudget, train_candidate

    settings = settings or {}
    started = time.perf_counter()
    metrics: dict[str, Any] = {"trial": config["trial"], "status": "ok", "reason": "", "accuracy": 0.0,
                               "reward": 0.0, "flops": 0, "params": 0}
    try:
        spec = load_spec(config["spec"])
        counts = profile(spec, method="fvcore")
        metrics.update(flops=counts["flops"], params=counts["params"])
        if config["trial"] == settings.get("fail_trial"):
            raise RuntimeError(f"injected failure in trial {config['trial']} (--fail-trial)")
        result = train_candidate(spec, data, TrainBudget(**settings["budget"]), device=trial_device(settings),
                                 seed=settings.get("seed", 0) + config["trial"])
        metrics.update({k: result[k] for k in ("status", "reason", "accuracy", "train_seconds",
                                               "images_per_second", "final_loss")})
        if result["status"] == "ok":
            metrics["reward"] = mnas_reward(result["accuracy"], counts["flops"], settings["target_flops"],
                                            settings["w"], settings["reward"])
    except Exception as exc:  # noqa: BLE001 - recorded as a failed trial
        metrics.update(status="failed", reason=f"{type(exc).__name__}: {exc}", accuracy=0.0, reward=0.0)
    metrics["seconds"] = time.perf_counter() - started
    tune.report(metrics)


# --------------------------------------------------------------------------------------------- driver side
class ControllerSearcher(Searcher):
    """A Ray Tune Searcher that wraps any controller (``ask``/``tell``) over a MnasNet space.

    ``suggest`` asks the controller and puts the choices and the decoded spec into the trial's config; an
    architecture this search already evaluated is told its recorded reward and not trained again.
    ``on_trial_complete`` tells the controller the reward (0 for a failed or errored trial), appends the
    trial to ``trials.csv``, saves the controller state and rewrites ``best_b0.json`` when the best changes.
    """

    def __init__(self, controller: Any, space: MnasNetSpace, config: SearchConfig, num_classes: int,
                 run_dir: Path, history: list[dict[str, Any]] | None = None,
                 on_record: Callable[[dict[str, Any]], None] | None = None) -> None:
        super().__init__(metric="reward", mode="max")
        self.controller, self.space, self.config = controller, space, config
        self.num_classes, self.run_dir, self.on_record = num_classes, run_dir, on_record
        self.records: list[dict[str, Any]] = list(history or [])
        self.evaluated: dict[tuple[int, ...], dict[str, Any]] = {
            tuple(r["choices"]): r for r in self.records if r["status"] == "ok"}
        self.live: dict[str, tuple[int, list[int]]] = {}
        self.in_flight: dict[tuple[int, ...], int] = {}
        self.waiting: dict[tuple[int, ...], int] = {}
        self.next_trial = len(self.records)
        self.told: set[int] = {r["trial"] for r in self.records}  # trials the controller has been told
        self.duplicates = 0  # proposals answered from the records instead of training
        self.converged = False

    # -- suggestions
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.next_trial >= self.config.trials or self.converged:
            return Searcher.FINISHED
        for _ in range(MAX_DUPLICATES):
            choices = self.controller.ask()
            key = tuple(choices)
            if key in self.evaluated:  # known: tell the recorded reward, train nothing
                self.controller.tell(choices, float(self.evaluated[key]["reward"]))
                self.duplicates += 1
                continue
            if key in self.in_flight:  # being trained now: told when that trial finishes
                self.waiting[key] = self.waiting.get(key, 0) + 1
                self.duplicates += 1
                continue
            break
        else:
            self.converged = True
            return Searcher.FINISHED
        trial = self.next_trial
        self.next_trial += 1
        self.live[trial_id] = (trial, choices)
        self.in_flight[key] = trial
        spec = self.space.decode(choices, resolution=self.config.resolution, num_classes=self.num_classes,
                                 name=f"trial-{trial:04d}")
        self._save_state()
        return {"trial": trial, "choices": choices, "spec": spec.to_dict()}

    # -- results
    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id not in self.live:
            return
        trial, choices = self.live.pop(trial_id)
        key = tuple(choices)
        self.in_flight.pop(key, None)
        result = dict(result or {})
        if error or "reward" not in result:
            result.update(status="failed", reason=result.get("reason") or "the trial's worker errored (see Ray logs)",
                          reward=0.0, accuracy=0.0)
        reward = float(result.get("reward") or 0.0)
        if not math.isfinite(reward):
            reward = 0.0
        record = {
            "trial": trial, "trial_id": trial_id, "choices": list(choices), "summary": self.space.summary(choices),
            "block_strings": self.space.decode(choices).block_strings, "flops": int(result.get("flops") or 0),
            "params": int(result.get("params") or 0), "accuracy": float(result.get("accuracy") or 0.0),
            "reward": reward, "status": result.get("status", "failed"), "reason": result.get("reason", ""),
            "seconds": round(float(result.get("seconds") or 0.0), 2),
            "train_seconds": round(float(result.get("train_seconds") or 0.0), 2),
            "images_per_second": round(float(result.get("images_per_second") or 0.0), 1),
            "final_loss": result.get("final_loss", ""),
        }
        append_trial(self.run_dir / "trials.csv", record)
        self.records.append(record)
        if record["status"] == "ok":
            self.evaluated[key] = record
        for _ in range(self.waiting.pop(key, 0) + 1):
            self.controller.tell(choices, reward)
        self.told.add(trial)
        self._save_state()
        best = self.best()
        if best is record:
            self._write_best(record)
        if self.on_record:
            self.on_record(record)

    def best(self) -> dict[str, Any] | None:
        ok = [r for r in self.records if r["status"] == "ok"]
        return max(ok, key=lambda r: (r["reward"], -r["trial"])) if ok else None

    def _write_best(self, record: dict[str, Any]) -> None:
        write_best(self.run_dir, self.space, self.config, self.num_classes, record)

    def _save_state(self) -> None:
        save_state(self.run_dir / "controller.pkl",
                   {"controller": self.controller.state_dict(), "told": sorted(self.told),
                    "duplicates": self.duplicates})

    # -- Tune's own checkpointing of the searcher
    def save(self, checkpoint_path: str) -> None:
        save_state(Path(checkpoint_path), {"controller": self.controller.state_dict(), "records": self.records})

    def restore(self, checkpoint_path: str) -> None:
        state = load_state(Path(checkpoint_path)) or {}
        if "controller" in state:
            self.controller.load_state_dict(state["controller"])
            self.records = state["records"]
            self.evaluated = {tuple(r["choices"]): r for r in self.records if r["status"] == "ok"}
            self.told = {r["trial"] for r in self.records}
            self.next_trial = len(self.records)


def budget_of(config: SearchConfig) -> dict[str, Any]:
    """The proxy training budget of a search, as TrainBudget fields."""
    budget: dict[str, Any] = {"batch_size": config.batch_size, "lr": config.lr}
    if config.steps:
        budget["steps"] = config.steps
    else:
        budget["epochs"] = config.epochs or 3.0
    return budget


def write_best(run_dir: Path, space: MnasNetSpace, config: SearchConfig, num_classes: int,
               record: dict[str, Any]) -> None:
    """Write ``best_b0.json``: the best architecture as a B0 spec with metrics and provenance."""
    spec = space.decode(record["choices"], resolution=config.resolution, num_classes=num_classes,
                        name=f"{Path(config.out).name}-b0")
    budget = budget_of(config)
    spec = spec.replace(
        metrics={"flops": record["flops"], "params": record["params"], "proxy_accuracy": record["accuracy"],
                 "reward": record["reward"]},
        provenance={"tool": "nas-search", "target_flops": config.target_flops, "reward_mode": config.reward,
                    "w": config.w, "controller": config.controller, "trial": record["trial"],
                    "trial_id": record["trial_id"], "choices": list(record["choices"]),
                    "proxy_data": config.data, "proxy_resolution": config.proxy_resolution,
                    "budget": budget, "seed": config.seed, "versions": versions(),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    spec.save(run_dir / "best_b0.json")


def finalize(run_dir: Path, config: SearchConfig) -> Any:
    """Write the Pareto plot from trials.csv and return the trials as a DataFrame."""
    frame = read_trials(run_dir / "trials.csv")
    plot_pareto(frame, config.target_flops, run_dir / "pareto.png",
                title=f"{Path(config.out).name}: {config.controller}, target {config.target_flops / 1e6:g}M FLOPs")
    return frame


# --------------------------------------------------------------------------------------------- orchestration
def _start_ray(address: str | None) -> bool:
    """Join ``address`` or start a local Ray instance sized to this machine; True when we started it."""
    import logging

    import ray

    if ray.is_initialized():
        return False
    debug = os.environ.get("NAS_DEBUG") == "1"  # set by --debug: Ray's own output on the console
    common = dict(log_to_driver=debug, logging_level=logging.INFO if debug else logging.ERROR,
                  include_dashboard=False)
    if address:
        ray.init(address=address, **common)
        return True
    import torch

    # "local" always starts a new instance, even where another Ray cluster runs on this machine
    ray.init(address="local", num_cpus=os.cpu_count() or 1, num_gpus=torch.cuda.device_count(), **common)
    return True


def plan_resources(cluster: dict[str, float], gpus_per_trial: float | None = None,
                   cpus_per_trial: float | None = None,
                   concurrency: int | None = None) -> tuple[float, float, int]:
    """(cpus per trial, gpus per trial, concurrency) from the options and the cluster's resources."""
    gpus_total, cpus_total = cluster.get("GPU", 0.0), cluster.get("CPU", 1.0)
    gpus = gpus_per_trial if gpus_per_trial is not None else (1.0 if gpus_total >= 1 else 0.0)
    if gpus > 0 and gpus > gpus_total:
        raise UserInputError(f"--gpus-per-trial {gpus:g}: the Ray cluster has {gpus_total:g} GPUs")
    if not concurrency:
        concurrency = max(1, int(gpus_total // gpus)) if gpus > 0 else 1
    if cpus_per_trial is not None:
        cpus = cpus_per_trial
    elif gpus > 0:
        cpus = max(1.0, min(4.0, cpus_total // concurrency))
    else:
        cpus = max(1.0, cpus_total // concurrency)
    if cpus > cpus_total:
        raise UserInputError(f"--cpus-per-trial {cpus:g}: the Ray cluster has {cpus_total:g} CPUs")
    return float(cpus), float(gpus), int(concurrency)


def _reconcile(controller: Any, state: dict[str, Any] | None, history: list[dict[str, Any]]) -> None:
    """Restore the controller and tell it any recorded trial its saved state had not heard of yet."""
    told: set[int] = set()
    if state:
        controller.load_state_dict(state["controller"])
        told = set(state.get("told", []))
    for record in history:
        if record["trial"] not in told:
            controller.tell(list(record["choices"]), float(record["reward"]))


def _history(run_dir: Path) -> list[dict[str, Any]]:
    frame = read_trials(run_dir / "trials.csv")
    records = frame.to_dict("records")
    for record in records:
        record["choices"] = list(record["choices"])
        record["reason"] = "" if record.get("reason") is None or record["reason"] != record["reason"] else record["reason"]
        record["block_strings"] = str(record.get("block_strings") or "").split()
    return records


def run_search(config: SearchConfig, resume: bool = False, log: Callable[[str], None] = print,
               data: Any = None) -> Any:
    """Run (or resume) a search; returns the trials as a DataFrame. See the module docstring."""
    import ray
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    from nas.data import load_data

    run_dir = Path(config.out).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "search.json", {"config": config.to_dict(), "versions": versions(),
                                         "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "resumed": resume})
    history = _history(run_dir) if resume else []
    space = MnasNetSpace()
    controller = make_controller(config.controller, space, seed=config.seed, **config.controller_options)
    state = load_state(run_dir / "controller.pkl") if resume else None
    _reconcile(controller, state, history)
    remaining = config.trials - len(history)
    if resume:
        log(f"resuming {run_dir}: {len(history)} trials finished, {max(0, remaining)} to go")
    if remaining <= 0:
        return finalize(run_dir, config)

    started = time.perf_counter()
    if data is None:
        data = load_data(config.data, config.proxy_resolution, config.val_fraction, config.seed)
    num_classes = config.num_classes or data.num_classes
    log(f"proxy data {data.describe()}")

    we_started = _start_ray(config.address)
    try:
        cpus, gpus, concurrency = plan_resources(ray.cluster_resources(), config.gpus_per_trial,
                                                 config.cpus_per_trial, config.concurrency)
        where = config.address or "a local Ray instance"
        log(f"{config.trials} trials of {config.controller} on {where}: {concurrency} at a time, "
            f"{cpus:g} CPU + {gpus:g} GPU each; target {config.target_flops / 1e6:g}M FLOPs at "
            f"{config.resolution}px, {config.reward} reward (w={config.w:g})")
        best_so_far = [max((r["reward"] for r in history), default=0.0)]

        def progress(record: dict[str, Any]) -> None:
            best_so_far[0] = max(best_so_far[0], record["reward"])
            head = f"[{record['trial'] + 1:>3}/{config.trials}] {record['summary']}"
            if record["status"] != "ok":
                log(f"{head}  FAILED: {record['reason']}  best {best_so_far[0]:.4f}")
                return
            log(f"{head}  {record['flops'] / 1e6:6.1f}M  acc {record['accuracy']:.3f}  "
                f"reward {record['reward']:.4f}  best {best_so_far[0]:.4f}  ({record['seconds']:.0f}s)")

        searcher = ControllerSearcher(controller, space, config, num_classes, run_dir, history, progress)
        searcher.duplicates = int((state or {}).get("duplicates", 0))
        settings = {"budget": budget_of(config),
                    "target_flops": config.target_flops, "w": config.w, "reward": config.reward,
                    "seed": config.seed, "cpus_per_trial": cpus, "gpus_per_trial": gpus,
                    "fail_trial": config.fail_trial}
        trainable = tune.with_resources(tune.with_parameters(run_trial, data=data, settings=settings),
                                        {"cpu": cpus, "gpu": gpus})
        attempt = len(list((run_dir / "ray").glob("tune-*"))) if (run_dir / "ray").exists() else 0
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrency),
                                        num_samples=remaining, reuse_actors=True),
            run_config=tune.RunConfig(name=f"tune-{attempt}", storage_path=str(run_dir / "ray"),
                                      verbose=1 if os.environ.get("NAS_DEBUG") == "1" else 0,
                                      failure_config=tune.FailureConfig(max_failures=2)),
        )
        interrupted = False
        try:
            tuner.fit()
        except KeyboardInterrupt:
            interrupted = True
        if searcher.converged:
            log(f"the controller has converged: {MAX_DUPLICATES} proposals in a row were already evaluated")
        frame = finalize(run_dir, config)
        if interrupted or (len(searcher.records) < config.trials and not searcher.converged):
            # Tune stops gracefully on Ctrl-C; either way the search is unfinished and can be resumed
            log(f"stopped after {len(searcher.records)} of {config.trials} trials; continue with: "
                f"nas-search --resume --out {config.out}")
            raise KeyboardInterrupt
        log(f"finished {len(frame)} trials in {time.perf_counter() - started:.0f}s")
        return frame
    except KeyboardInterrupt:
        finalize(run_dir, config)
        raise
    finally:
        if we_started:
            ray.shutdown()
