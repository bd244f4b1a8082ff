"""The result cache across runs: what a candidate measured on a given proxy, kept in one SQLite file.

Keyed by the job: its architecture (canonical block strings with stem, head and activation) and the proxy's
fingerprint (data name and a hash of its arrays, training resolution, budget, the job's cache seed, trainer
version). Value: accuracy, FLOPs and params at the resolution where they were counted, seconds, when. Only
the driver reads and writes it, before and after the trials. A cache is never the only copy of a result
(``trials.csv`` is): a corrupt, locked or read-only cache prints one warning and the command goes on without it.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from nas.console import warn as say_warning
from nas.data.datasets import cache_root
from nas.engine.job import TRAINER_VERSION, Job, Measurement
from nas.network.counting import profile
from search_spaces.spec import ArchSpec, load_spec

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    proxy TEXT NOT NULL,
    arch TEXT NOT NULL,
    accuracy REAL NOT NULL,
    flops INTEGER NOT NULL,
    params INTEGER NOT NULL,
    resolution INTEGER NOT NULL,
    num_classes INTEGER NOT NULL,
    seconds REAL,
    train_seconds REAL,
    images_per_second REAL,
    final_loss REAL,
    train_loss REAL,
    created REAL NOT NULL,
    run TEXT,
    PRIMARY KEY (proxy, arch)
)"""
VALUE_COLUMNS = ("accuracy", "flops", "params", "resolution", "num_classes", "seconds", "train_seconds",
                 "images_per_second", "final_loss", "train_loss", "created", "run")


def default_cache_path() -> Path:
    """``$NAS_CACHE_DIR/results.sqlite`` (``$XDG_CACHE_HOME/nas-toolkit``, or ``~/.cache/nas-toolkit``, when
    the variable is not set)."""
    return cache_root() / "results.sqlite"


def arch_key(spec: ArchSpec) -> str:
    """The architecture as text: its block strings, plus the stem, head and activation they sit between."""
    stem = f"stem{spec.stem_channels}" + ("" if spec.stem_stride == 2 else f"s{spec.stem_stride}")
    return " ".join([stem, *spec.block_strings, f"head{spec.head_channels}",
                     spec.activation, f"dropout{spec.dropout:g}", f"drop_connect{spec.drop_connect:g}"])


def describe_data(data: Any) -> dict[str, Any]:
    """What identifies a data set in the cache's key: its name, a hash of its arrays, resolution, classes."""
    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train, data.x_val, data.y_val):
        digest.update(str((array.shape, str(array.dtype))).encode())
        digest.update(memoryview(array).cast("B") if array.flags.c_contiguous else array.tobytes())
    return {"data": data.name, "arrays": digest.hexdigest(), "proxy_resolution": data.resolution,
            "num_classes": data.num_classes}


def proxy_fingerprint(data: dict[str, Any], job: Job) -> str:
    """A hash of everything that decides what a job measures apart from its architecture: the data (as
    :func:`describe_data` gives it), the training resolution, the budget, the cache seed, the trainer."""
    described = dict(data, budget=job.budget.to_dict(), seed=job.key_seed, trainer=TRAINER_VERSION)
    if job.train_resolution:
        described["proxy_resolution"] = job.train_resolution
    if job.train_width != 1:
        described["train_width"] = job.train_width
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


class CacheSettings(Protocol):
    """Where a command keeps its results (a TrialResources has these fields)."""

    cache: str | None
    no_cache: bool


def open_cache(settings: CacheSettings, datasets: dict[str, Any],
               warn: Callable[[str], None] = say_warning) -> "ResultCache | None":
    """The result cache for a command's data sets (key -> data), or None with ``--no-cache``."""
    if settings.no_cache:
        return None
    return ResultCache(settings.cache or default_cache_path(), {key: describe_data(data) for key, data in
                                                                 datasets.items()}, warn=warn)


class ResultCache:
    """Get and put the measurements of jobs. Never raises: a failure disables it.

    ``datasets``: each data set's key (a job's ``data``) -> :func:`describe_data` of it, computed once.
    """

    def __init__(self, path: str | Path, datasets: dict[str, dict[str, Any]],
                 warn: Callable[[str], None] = say_warning) -> None:
        self.path, self.datasets, self.warn = Path(path), datasets, warn
        self.hits = 0
        self._open()

    def _open(self) -> None:
        self.connection: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(str(self.path), timeout=2.0)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(SCHEMA)
            columns = {row[1] for row in connection.execute("PRAGMA table_info(results)")}
            if "train_loss" not in columns:  # a cache from before the mean training loss was kept
                connection.execute("ALTER TABLE results ADD COLUMN train_loss REAL")
            connection.commit()
            self.connection = connection
        except (sqlite3.Error, OSError) as exc:
            self._disable(exc)

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles its searcher: the connection is reopened
        return {k: v for k, v in self.__dict__.items() if k != "connection"} | {"was_enabled": self.enabled}

    def __setstate__(self, state: dict[str, Any]) -> None:
        enabled = state.pop("was_enabled")
        self.__dict__.update(state)
        self.connection = None
        if enabled:
            self._open()

    @property
    def enabled(self) -> bool:
        return self.connection is not None

    def _disable(self, exc: Exception) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except sqlite3.Error:
                pass
        self.connection = None
        self.warn(f"warning: result cache {self.path} is not usable ({type(exc).__name__}: {exc}); "
                  f"continuing without it")

    def key(self, job: Job, spec: ArchSpec) -> tuple[str, str]:
        """(proxy fingerprint, architecture) of ``job``, whose spec is ``spec``."""
        return proxy_fingerprint(self.datasets[job.data], job), arch_key(spec)

    def get(self, job: Job) -> Measurement | None:
        """The cached measurement of ``job``, or None. FLOPs and params are those of the job's spec: counted
        again (analytically, equal to fvcore) when the cached ones were counted at another resolution or
        class count."""
        if self.connection is None:
            return None
        spec = load_spec(job.spec)
        try:
            row = self.connection.execute(
                f"SELECT {', '.join(VALUE_COLUMNS)} FROM results WHERE proxy = ? AND arch = ?",
                self.key(job, spec)).fetchone()
        except sqlite3.Error as exc:
            self._disable(exc)
            return None
        if row is None:
            return None
        self.hits += 1
        values = dict(zip(VALUE_COLUMNS, row))
        measured = Measurement(accuracy=values["accuracy"], flops=values["flops"], params=values["params"],
                               seconds=values["seconds"], train_seconds=values["train_seconds"],
                               images_per_second=values["images_per_second"], final_loss=values["final_loss"],
                               train_loss=values["train_loss"])
        if (values["resolution"], values["num_classes"]) != (spec.resolution, spec.num_classes):
            counts = profile(spec, method="analytic")
            measured.flops, measured.params = counts["flops"], counts["params"]
        return measured

    def put(self, job: Job, measured: Measurement, run: str) -> None:
        """Remember a successful job's measurement (the first result of a job is kept)."""
        if self.connection is None or not measured.ok:
            return
        spec = load_spec(job.spec)
        values = {"accuracy": float(measured.accuracy), "flops": int(measured.flops),
                  "params": int(measured.params), "resolution": spec.resolution, "num_classes": spec.num_classes,
                  "seconds": measured.seconds, "train_seconds": measured.train_seconds,
                  "images_per_second": measured.images_per_second, "final_loss": _number(measured.final_loss),
                  "train_loss": _number(measured.train_loss), "created": time.time(), "run": run}
        try:
            with self.connection:
                self.connection.execute(
                    f"INSERT OR IGNORE INTO results (proxy, arch, {', '.join(VALUE_COLUMNS)}) "
                    f"VALUES (?, ?, {', '.join('?' * len(VALUE_COLUMNS))})",
                    (*self.key(job, spec), *(values[c] for c in VALUE_COLUMNS)))
        except sqlite3.Error as exc:
            self._disable(exc)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
