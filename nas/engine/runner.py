"""The one runner of every command that trains: start or join Ray, size the trials' resources, run the jobs.

    with Runner.for_settings(config.resources, log_file=run_dir / "ray.log") as runner:
        finished = runner.run(searcher, {"proxy": data}, storage=run_dir / "ray", name="tune-0", num_samples=16)

``run`` returns False, instead of raising, when the run was interrupted (Ctrl-C): the caller decides what
an unfinished run means for its own records.

A runner leaves its process as it found it: the environment variables it sets for Ray (:data:`RAY_ENVIRONMENT`),
the ``ray`` logger's level and handlers, and the SIGINT/SIGTERM handlers are put back when it exits.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from nas.errors import UserInputError
from nas.signals import handlers_kept, stop_on_sigterm, watch_ray
from nas.timings import usable_cpus

# What Ray reads from the environment, set while a runner is open where the caller has not set it: no usage
# statistics sent, Tune's plain output (its newer console output would mix with the command's lines), and
# workers at the command's priority (Ray runs them at nice 15: a trial beside any other job then gets a sliver
# of the CPU; a joined cluster keeps its own setting), and Ray Train's controller looking at its workers every
# 0.5 s instead of 2 s (a training ends that much sooner: a 1-epoch nas-train 20.0 s against 22.6 s,
# benchmarks/results/ray_train_health_check.md).
RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AIR_NEW_OUTPUT": "0", "RAY_worker_niceness": "0",
                   "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}


@contextlib.contextmanager
def ray_environment() -> Iterator[None]:
    """:data:`RAY_ENVIRONMENT` where not set, for the duration; the environment as it was afterwards."""
    added = [name for name in RAY_ENVIRONMENT if name not in os.environ]
    os.environ.update({name: RAY_ENVIRONMENT[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@dataclass(frozen=True)
class Resources:
    """What each trial asks of Ray, and how many run at once."""

    cpus: float
    gpus: float
    concurrency: int

    def describe(self) -> str:
        return f"{self.concurrency} at a time, {self.cpus:g} CPU + {self.gpus:g} GPU each"


SMALL_PROXY_PIXELS = 64 * 64 * 256  # resolution^2 x batch up to which a proxy trial counts as small


def trials_per_gpu(proxy_resolution: int, batch_size: int) -> int:
    """How many proxy trials share one GPU when ``--gpus-per-trial`` is not given.

    A small proxy (the default: 32 px, batch 64) leaves a data-centre GPU mostly idle, launch-bound: four
    trials share one (``--gpus-per-trial 0.25``); anything larger gets a GPU of its own. Provisional: not yet
    measured on a GPU; ``python -m benchmarks gpu_check`` part (c) measures candidates per hour at 1, 2, 4 and
    8.
    """
    return 4 if proxy_resolution * proxy_resolution * batch_size <= SMALL_PROXY_PIXELS else 1


# On CPU, trials run one torch thread each, as many at once as there are CPUs (up to this many, each trial's
# worker holding about 0.5 GB): small proxies scale badly across threads, and a 1-thread trial keeps its speed
# beside other work where a 2-thread one collapses (its OpenMP threads wait on the one that shares a core);
# measured by benchmarks/trial_load.py, figures in docs/clusters-and-gpus.md ("Trials beside other work").
CPU_TRIALS_AT_ONCE = 16


def plan_resources(cluster: dict[str, float], gpus_per_trial: float | None = None,
                   cpus_per_trial: float | None = None, concurrency: int | None = None,
                   per_gpu: int = 1, nodes: list[dict[str, float]] | None = None) -> Resources:
    """Per-trial CPUs and GPUs and the concurrency, from the options and the cluster's resources.

    ``per_gpu``: trials sharing one GPU when ``gpus_per_trial`` is not given (see :func:`trials_per_gpu`).
    ``nodes``: each live node's resources (default: one node holding the whole cluster). A trial runs on one
    node, so it never asks for more than the largest node has: Ray would keep it pending forever.
    """
    gpus_total, cpus_total = cluster.get("GPU", 0.0), cluster.get("CPU", 1.0)
    gpus = gpus_per_trial if gpus_per_trial is not None else (1.0 / per_gpu if gpus_total >= 1 else 0.0)
    if gpus > 0 and gpus > gpus_total:
        raise UserInputError(f"--gpus-per-trial {gpus:g}: the Ray cluster has {gpus_total:g} GPUs")
    if not concurrency and gpus > 0:
        concurrency = max(1, int(gpus_total // gpus))
    elif not concurrency:  # on CPU: one thread per trial, as many trials as CPUs (see CPU_TRIALS_AT_ONCE)
        concurrency = 1 if cpus_per_trial is not None else max(1, min(int(cpus_total), CPU_TRIALS_AT_ONCE))
    if cpus_per_trial is not None:
        cpus = cpus_per_trial
    elif gpus > 0:
        cpus = max(1.0, min(4.0, cpus_total // concurrency))
    else:
        cpus = max(1.0, cpus_total // concurrency)
    if cpus > cpus_total:
        raise UserInputError(f"--cpus-per-trial {cpus:g}: the Ray cluster has {cpus_total:g} CPUs")
    nodes = nodes or [{"CPU": cpus_total, "GPU": gpus_total}]
    fitting = [n for n in nodes if n.get("GPU", 0.0) >= gpus]  # nodes with the GPUs (or GPU share) of a trial
    if not fitting:
        largest = max(n.get("GPU", 0.0) for n in nodes)
        raise UserInputError(f"--gpus-per-trial {gpus:g}: no node of the Ray cluster has {gpus:g} GPUs (the "
                             f"largest has {largest:g}); a trial runs on one node")
    node_cpus = max(n.get("CPU", 0.0) for n in fitting)
    if cpus > node_cpus:
        if cpus_per_trial is not None:
            raise UserInputError(f"--cpus-per-trial {cpus:g}: no node of the Ray cluster has {cpus:g} CPUs (the "
                                 f"largest{' with GPUs' if gpus > 0 else ''} has {node_cpus:g}); a trial runs on "
                                 f"one node")
        cpus = max(1.0, node_cpus)
    return Resources(float(cpus), float(gpus), int(concurrency))


def node_resources() -> list[dict[str, float]]:
    """The CPUs and GPUs of each live node of the connected Ray cluster."""
    import ray

    return [{k: float(v) for k, v in n.get("Resources", {}).items() if k in ("CPU", "GPU")}
            for n in ray.nodes() if n.get("Alive")]


CONNECT_TIMEOUT = 30.0  # seconds to wait for a Ray head at --address to answer


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast, with one line, when nothing answers at a ``host:port`` address (``ray.init`` retries forever).

    ``auto`` (find the cluster on this machine) is left to Ray; ``ray://host:port`` is checked like host:port.
    """
    if address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise UserInputError(f"--address {address}: expected host:port (e.g. 10.0.0.5:6379) or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserInputError(f"--address {address}: nothing answers there within {timeout:g}s ({reason}); "
                             f"start the head with 'ray start --head --port={port}' or use --address auto") from None


def use_token_auth_for(address: str) -> None:
    """Send this machine's Ray auth token when joining ``address`` by host:port, as ``--address auto`` does.

    ``ray start --head`` turns token authentication on when a token exists (``~/.ray/auth_token``, written by
    any earlier local Ray, or ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH``); a driver joining by host:port did
    not send it and was refused with InvalidAuthToken warnings. ``RAY_AUTH_MODE``, when set, decides. Uses
    Ray's own check (a private module: on a Ray without token authentication there is nothing to do).
    """
    if address in ("auto", "local"):
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def start_ray(address: str | None, debug: bool = False) -> bool:
    """Join ``address`` or start a local Ray instance sized to this machine; True when this call started it."""
    import ray

    if ray.is_initialized():
        _check_same_cluster(address)
        return False
    if address:
        check_reachable(address)
    if not debug:
        logging.getLogger("ray").setLevel(logging.ERROR)
    if address:
        use_token_auth_for(address)
    common = dict(log_to_driver=debug, logging_level=logging.INFO if debug else logging.ERROR,
                  include_dashboard=False)
    if address:
        ray.init(address=address, **common)
        return True
    import torch

    # "local" always starts a new instance, even where another Ray cluster runs on this machine
    # the CPUs this process may run on (taskset, cpusets), not the machine's: a pinned command stays on its cores
    ray.init(address="local", num_cpus=usable_cpus(), num_gpus=torch.cuda.device_count(), **common)
    return True


def local_ray_exit_code() -> int | None:
    """None while the local Ray instance this process started has its GCS server and raylet; once one has died,
    its exit status. Read from Ray's private record of the processes it started (None where that record is not
    found). A SIGTERM to the command's process group kills the raylet, not the GCS server. Ray has no public
    API for this (ray.nodes() asks the GCS server, and hangs when it is gone)."""
    try:
        from ray._private import worker
    except ImportError:  # a Ray whose private layout moved: the watch is off, the command still stops on signals
        return None

    processes = getattr(getattr(worker, "_global_node", None), "all_processes", None) or {}
    for kind in ("gcs_server", "raylet"):
        for info in processes.get(kind, []):
            process = getattr(info, "process", None)
            if process is not None and process.poll() is not None:
                return process.returncode
    return None


def _check_same_cluster(address: str | None) -> None:
    """With Ray already up in this process, an ``address`` naming another cluster is refused in one line
    (Ray cannot join a second cluster; going on would run the work where the user did not ask)."""
    import ray

    if not address or address == "auto":
        return
    current = ray.get_runtime_context().gcs_address
    if address.removeprefix("ray://") != current:
        check_reachable(address)  # nothing there: that is the first thing to say
        raise UserInputError(f"--address {address}: Ray already runs in this process, connected to {current}; "
                             f"call ray.shutdown() first, or give --address {current}")


TRIAL_RETRIES = 2  # a trial whose worker dies (a kill, the OOM killer, a crash) is started again this many times


class QuietFileHandler(logging.FileHandler):
    """ray.log's handler: a message that cannot be written (the disk is full) is dropped, not reported with a
    traceback on the console for each message; the command says what failed in its own one line."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass


@dataclass(frozen=True)
class TrialResources:
    """Where a command's trials run (Ray's address, the resources of a trial, how many at a time), Ray's own
    output on the console or not (``debug``), and where the results are cached; a search's ``resources``."""

    address: str | None = None
    debug: bool = False
    gpus_per_trial: float | None = None
    cpus_per_trial: float | None = None
    concurrency: int | None = None
    cache: str | None = None
    no_cache: bool = False

    @classmethod
    def from_fields(cls, values: dict[str, Any]) -> "TrialResources":
        """From a command's flat fields (others ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: bool(value) if key in ("debug", "no_cache") else value
                      for key, value in values.items() if key in names})


class Runner:
    """Ray for one command: started (or joined) on enter, shut down on exit if this runner started it."""

    @classmethod
    def for_settings(cls, settings: TrialResources, per_gpu: int = 1, log_file: Path | None = None) -> "Runner":
        """A runner for a command's settings (address, debug, per-trial resources, concurrency)."""
        return cls(settings.address, bool(settings.debug), settings.gpus_per_trial, settings.cpus_per_trial,
                   settings.concurrency, per_gpu, log_file)

    def __init__(self, address: str | None = None, debug: bool = False, gpus_per_trial: float | None = None,
                 cpus_per_trial: float | None = None, concurrency: int | None = None, per_gpu: int = 1,
                 log_file: Path | None = None) -> None:
        self.address, self.debug, self.log_file = address, debug, log_file
        self.requested = (gpus_per_trial, cpus_per_trial, concurrency, per_gpu)
        self.resources = Resources(1.0, 0.0, 1)
        self._started = False
        self._quieted: list[tuple[logging.Handler, int]] = []
        self._file_handler: logging.Handler | None = None
        self._ray_level = logging.NOTSET
        self._kept = contextlib.ExitStack()  # the process as found: environment, handlers, the ray logger

    @property
    def where(self) -> str:
        """Where trials run, e.g. ``10.0.0.5:6379 (3 nodes, 48 CPUs, 8 GPUs)``."""
        place = self.address or "a local Ray instance"
        import ray

        if not ray.is_initialized():
            return place
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        total = ray.cluster_resources()
        return (f"{place} ({len(nodes)} node{'s' if len(nodes) != 1 else ''}, {total.get('CPU', 0):g} CPUs, "
                f"{total.get('GPU', 0):g} GPUs)")

    def __enter__(self) -> "Runner":
        import ray

        self._kept.enter_context(handlers_kept())
        self._kept.enter_context(ray_environment())
        self._kept.callback(logging.getLogger("ray").setLevel, logging.getLogger("ray").level)
        try:
            self._started = start_ray(self.address, self.debug)
        except BaseException:
            self._kept.close()
            raise
        stop_on_sigterm()  # ray.init replaced the command's handler with one that exits at once
        if self._started and not self.address:
            watch_ray(local_ray_exit_code)  # a SIGTERM to the whole process group kills it too (nas.signals)
        self._route_ray_logs()
        try:
            self.resources = plan_resources(ray.cluster_resources(), *self.requested, nodes=node_resources())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _route_ray_logs(self) -> None:
        """Without ``debug``, Ray's and Tune's messages (a dead worker's 30-line traceback) go to ``log_file``
        instead of the console; the search reports the failure in its own words."""
        if self.debug or self.log_file is None:
            return
        ray_logger = logging.getLogger("ray")
        self._ray_level = ray_logger.level
        callers = logging.getLogger().handlers  # the caller's own (on the root logger) are left alone
        for handler in ray_logger.handlers:
            if not isinstance(handler, logging.FileHandler) and handler not in callers:
                self._quieted.append((handler, handler.level))
                handler.setLevel(logging.CRITICAL + 1)
        Path(self.log_file).parent.mkdir(parents=True, exist_ok=True)
        self._file_handler = QuietFileHandler(self.log_file)
        self._file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        ray_logger.addHandler(self._file_handler)
        ray_logger.setLevel(logging.INFO)

    def _restore_ray_logs(self) -> None:
        ray_logger = logging.getLogger("ray")
        for handler, level in self._quieted:
            handler.setLevel(level)
        self._quieted = []
        if self._file_handler is not None:
            ray_logger.removeHandler(self._file_handler)
            self._file_handler.close()
            self._file_handler = None
            ray_logger.setLevel(self._ray_level)

    def __exit__(self, *exc: Any) -> None:
        self._restore_ray_logs()
        if self._started:  # a runner that joined the instance of an outer one leaves its watch alone
            import ray

            watch_ray(None)  # shut down on purpose from here
            ray.shutdown()
            self._started = False
        self._kept.close()

    def run(self, searcher: Any, datasets: dict[str, Any], *, storage: Path, name: str, num_samples: int,
            callbacks: Sequence[Any] = (), scheduler: Any = None,
            trainable: Callable[..., None] | None = None) -> bool:
        """Run the jobs ``searcher`` proposes as Ray Tune trials of ``trainable`` (the engine's ``run_job``
        unless a test injects another), with ``datasets`` and this runner's resources; False when interrupted.

        Trials reuse their actors, a worker that dies is retried twice, and at most ``concurrency`` trials run
        at once (through Tune's ConcurrencyLimiter). ``scheduler``: a Tune trial scheduler (ASHA) that may stop
        trials at their intermediate reports.
        """
        from ray import tune
        from ray.tune.search import ConcurrencyLimiter

        if trainable is None:
            from nas.engine.trainable import run_job as trainable
        res = self.resources
        tune_config = tune.TuneConfig(num_samples=num_samples, reuse_actors=True, scheduler=scheduler,
                                      search_alg=ConcurrencyLimiter(searcher, max_concurrent=res.concurrency))
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(trainable, datasets=datasets, resources=res),
                                {"cpu": res.cpus, "gpu": res.gpus}),
            tune_config=tune_config,
            run_config=tune.RunConfig(name=name, storage_path=str(Path(storage).resolve()),
                                      verbose=1 if self.debug else 0, callbacks=list(callbacks),
                                      failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES)))
        try:
            # Tune leaves its SIGINT handler behind (it only flags a run that has ended): put back before the next
            # run of this runner or a later command of the process, or Ctrl-C and SIGTERM would be swallowed
            with driver_on_one_thread(), handlers_kept():
                grid = tuner.fit()
        except KeyboardInterrupt:
            return False
        # Tune stops gracefully on Ctrl-C: trials never started, or started and not ended, mean an interrupted run
        return len(grid) == num_samples and grid.num_terminated + grid.num_errors == len(grid)


@contextlib.contextmanager
def driver_on_one_thread() -> Iterator[None]:
    """Keep this process's own compute (a controller's update, the predictor's fit) on one torch and one BLAS
    thread while trials run: beside trials that keep the cores busy, a 2-thread update spins and waits
    (benchmarks/trial_load.py's collapse; docs/clusters-and-gpus.md)."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


def next_experiment_name(storage: Path, prefix: str = "tune") -> str:
    """``tune-N``: one Tune experiment per start or resume of a run."""
    attempt = len(list(Path(storage).glob(f"{prefix}-*"))) if Path(storage).exists() else 0
    return f"{prefix}-{attempt}"
