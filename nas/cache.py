"""The result cache across runs: what a candidate measured on a given proxy, kept in one SQLite file.

Key: the architecture (its canonical block strings with stem, head and activation) and the proxy's
fingerprint (data name and a hash of its arrays, proxy resolution, training budget, seed, trainer version).
Value: accuracy, FLOPs and params at the resolution where they were counted, seconds, when. Only the driver
writes it. A cache is never the only copy of a result (``trials.csv`` is): a corrupt, locked or read-only
cache prints one warning and the search goes on without it.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from nas.console import say
from nas.spec import ArchSpec

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
    created REAL NOT NULL,
    run TEXT,
    PRIMARY KEY (proxy, arch)
)"""
VALUE_COLUMNS = ("accuracy", "flops", "params", "resolution", "num_classes", "seconds", "train_seconds",
                 "images_per_second", "final_loss", "created", "run")


def default_cache_path() -> Path:
    """``$NAS_CACHE_DIR/results.sqlite`` (``~/.cache/nas-toolkit`` when the variable is not set)."""
    from nas.data import cache_root

    return cache_root() / "results.sqlite"


def arch_key(spec: ArchSpec) -> str:
    """The architecture as text: its block strings, plus the stem, head and activation they sit between."""
    return " ".join([f"stem{spec.stem_channels}", *spec.block_strings, f"head{spec.head_channels}",
                     spec.activation, f"dropout{spec.dropout:g}", f"drop_connect{spec.drop_connect:g}"])


def proxy_fingerprint(data: Any, budget: dict[str, Any], seed: int, trainer_version: int) -> str:
    """A hash of everything that decides what a training on the proxy measures, apart from the architecture."""
    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train, data.x_val, data.y_val):
        digest.update(str((array.shape, str(array.dtype))).encode())
        digest.update(memoryview(array).cast("B") if array.flags.c_contiguous else array.tobytes())
    if budget.get("optimizer") == "sgd":  # results from before the optimizer was a choice (all SGD) stay valid
        budget = {k: v for k, v in budget.items() if k != "optimizer"}
    described = {"data": data.name, "arrays": digest.hexdigest(), "proxy_resolution": data.resolution,
                 "num_classes": data.num_classes, "budget": budget, "seed": seed, "trainer": trainer_version}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


@dataclass
class CachedResult:
    """One cached measurement."""

    accuracy: float
    flops: int
    params: int
    resolution: int
    num_classes: int
    seconds: float | None
    train_seconds: float | None
    images_per_second: float | None
    final_loss: float | None
    created: float
    run: str | None

    def measured(self) -> dict[str, Any]:
        """The result as a trial's measurements (what ``evaluate_candidate`` returns for a trained one)."""
        return {"status": "ok", "reason": "", "accuracy": self.accuracy, "flops": self.flops, "params": self.params,
                "seconds": self.seconds, "train_seconds": self.train_seconds,
                "images_per_second": self.images_per_second, "final_loss": self.final_loss}


class ResultCache:
    """Get and put results by (proxy fingerprint, architecture). Never raises: a failure disables it."""

    def __init__(self, path: str | Path, proxy: str, warn: Callable[[str], None] = say) -> None:
        self.path, self.proxy, self.warn = Path(path), proxy, warn
        self.hits = 0
        self._open()

    def _open(self) -> None:
        self.connection: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(str(self.path), timeout=2.0)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(SCHEMA)
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

    def get(self, spec: ArchSpec, proxy: str | None = None) -> CachedResult | None:
        """The cached result of ``spec``'s architecture on this proxy (or on ``proxy``), or None."""
        if self.connection is None:
            return None
        try:
            row = self.connection.execute(
                f"SELECT {', '.join(VALUE_COLUMNS)} FROM results WHERE proxy = ? AND arch = ?",
                (proxy or self.proxy, arch_key(spec))).fetchone()
        except sqlite3.Error as exc:
            self._disable(exc)
            return None
        if row is None:
            return None
        self.hits += 1
        return CachedResult(*row)

    def put(self, spec: ArchSpec, record: dict[str, Any], run: str, proxy: str | None = None) -> None:
        """Remember a successfully trained candidate (the first result of an architecture is kept)."""
        if self.connection is None:
            return
        values = {"accuracy": float(record["accuracy"]), "flops": int(record["flops"]),
                  "params": int(record["params"]), "resolution": spec.resolution, "num_classes": spec.num_classes,
                  "seconds": record.get("seconds"), "train_seconds": record.get("train_seconds"),
                  "images_per_second": record.get("images_per_second"), "final_loss": _number(record.get("final_loss")),
                  "created": time.time(), "run": run}
        try:
            with self.connection:
                self.connection.execute(
                    f"INSERT OR IGNORE INTO results (proxy, arch, {', '.join(VALUE_COLUMNS)}) "
                    f"VALUES (?, ?, {', '.join('?' * len(VALUE_COLUMNS))})",
                    (proxy or self.proxy, arch_key(spec), *(values[c] for c in VALUE_COLUMNS)))
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
