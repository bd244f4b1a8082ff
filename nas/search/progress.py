"""What a user sees while a search runs: a line per event, and on a terminal a live status line.

Lines (always, through ``nas.console.say``): the search's start, each trial as it starts and as it ends. With
the commands' console output on a terminal, one status line kept at the bottom and redrawn every second:
candidates done of the total, the trials running and for how long, the best reward so far, elapsed time and an
ETA from the measured pace. When the output is not a terminal (a log file, CI) or is a library call's, only
the lines are said.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

from nas.console import human_duration, live_console, say, status_line

NAMED_RUNNING = 3  # running trials named one by one in the status line; more are counted



class Progress:
    """Progress of one search run; ``log`` says a line, ``tick`` redraws the status line on a terminal.

    ``done`` returns (candidates evaluated, best reward or None); ``total`` is the search's ``--trials``.
    """

    def __init__(self, total: int, done: Callable[[], tuple[int, float | None]], stream: TextIO | None = None,
                 live: bool | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.done, self.clock = total, done, clock
        self._stream = stream  # the status line's; None: stdout as it is when drawn (where the lines go)
        self.live = live_console() if live is None else live
        self.started = clock()
        self.first_done: int | None = None  # evaluated when this session began (a resume starts above 0)
        self.running: dict[int, float] = {}  # trial number -> start time
        self._shown = False
        self._closed = False
        self._last_tick = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # Tune saves the searcher (whose recorder logs here) with its state: a copy says its lines, plainly
        return {"total": self.total}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["total"], lambda: (0, None), live=False)

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    # -- lines
    def log(self, line: str) -> None:
        """Say a line above the status line (which is redrawn after it)."""
        self._clear()
        say(line)
        self.tick(force=True)

    def trial_started(self, trial: int, summary: str) -> None:
        self.running[trial] = self.clock()
        self.log(f"trial {trial:>3} started   {summary}")

    def trial_ended(self, trial: int) -> None:
        self.running.pop(trial, None)

    # -- the status line
    def status(self) -> str:
        """One line: done/total, running trials, best reward, elapsed and ETA."""
        now = self.clock()
        done, best = self.done()
        if self.first_done is None:
            self.first_done = done
        parts = [f"{done}/{self.total} done"]
        if 0 < len(self.running) <= NAMED_RUNNING:
            parts.append(", ".join(f"trial {t} running {human_duration(now - s)}"
                                   for t, s in sorted(self.running.items())))
        elif self.running:
            trial, started = min(self.running.items(), key=lambda item: (item[1], item[0]))
            parts.append(f"{len(self.running)} running (longest: trial {trial}, {human_duration(now - started)})")
        parts.append(f"best reward {best:.4f}" if best is not None else "no result yet")
        elapsed = now - self.started
        parts.append(f"elapsed {human_duration(elapsed)}")
        finished_here = done - self.first_done
        if finished_here > 0 and done < self.total:
            parts.append(f"ETA {human_duration(elapsed / finished_here * (self.total - done))}")
        elif done < self.total:
            parts.append("ETA after the first trial")
        return " · ".join(parts)

    def tick(self, force: bool = False) -> None:
        """Redraw the status line (at most once a second unless ``force``); nothing when not a terminal."""
        if not self.live or self._closed:
            return
        now = self.clock()
        if not force and now - self._last_tick < 1.0:
            return
        self._last_tick = now
        self.stream.write(status_line(self.status(), self.stream))
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """Remove the status line for good (the caller prints the summary)."""
        self._clear()
        self._closed = True

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
