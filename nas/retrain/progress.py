"""What a user sees while nas-train runs: a line per epoch, and on a terminal a status line with the ETA.

Rank 0 appends every epoch to ``metrics.csv``; the driver reads it from a thread while Ray Train runs, so
the lines come from the record itself (and a resumed run shows only its new epochs).
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Callable, TextIO

from nas.console import human_duration, live_console, say, status_line
from nas.files import read_number_rows as read_metrics  # metrics.csv: whole rows only


def epoch_line(row: dict[str, float], epochs: int) -> str:
    return (f"epoch {int(row['epoch'])}/{epochs}  loss {row['loss']:.4f}  val {row['val_accuracy']:.4f}  "
            f"ema {row['ema_val_accuracy']:.4f}  lr {row['lr']:.3g}  {row['images_per_second']:,.0f} img/s  "
            f"{human_duration(row['seconds'])}")


class EpochWatcher:
    """Says each new row of ``metrics.csv`` while training runs (``with EpochWatcher(...):``); with the commands'
    console output on a terminal, a status line below them."""

    def __init__(self, path: Path, epochs: int, done_before: int, stream: TextIO | None = None,
                 live: bool | None = None, interval: float = 0.5, clock: Callable[[], float] = time.monotonic,
                 on_epoch: Callable[[], None] | None = None) -> None:
        self.path, self.epochs, self.done_before = Path(path), epochs, done_before
        self.on_epoch = on_epoch  # called after new epochs were printed (the driver rewrites report.html)
        self._stream = stream  # the status line's; None: stdout as it is when drawn (where the lines go)
        self.live = live_console() if live is None else live
        self.interval, self.clock = interval, clock
        self.shown = done_before
        self.best = float("nan")
        self.started = clock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def __enter__(self) -> "EpochWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.poll()
        if self.live:
            print("\r\033[K", end="", file=self.stream, flush=True)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        """Print the epochs finished since the last call, then the status line."""
        rows = [r for r in read_metrics(self.path) if r["epoch"] > self.shown]
        for row in rows:
            self.shown = int(row["epoch"])
            best = max(row["val_accuracy"], row["ema_val_accuracy"])
            self.best = best if self.best != self.best else max(self.best, best)
            if self.live:
                print("\r\033[K", end="", file=self.stream)
            say(epoch_line(row, self.epochs))
        if rows and self.on_epoch is not None:
            self.on_epoch()
        if self.live:
            print(status_line(self.status(), self.stream), end="", file=self.stream, flush=True)

    def status(self) -> str:
        """``epoch 4/30 running, best val 0.61, 2m 10s elapsed, ETA 14m 05s``."""
        elapsed = self.clock() - self.started
        done = self.shown - self.done_before
        eta = f", ETA {human_duration(elapsed / done * (self.epochs - self.shown))}" if done else ""
        best = f", best val {self.best:.4f}" if self.best == self.best else ""
        return (f"epoch {min(self.shown + 1, self.epochs)}/{self.epochs} running{best}, "
                f"{human_duration(elapsed)} elapsed{eta}")
