"""What the toolkit says while it works, through the ``nas`` logger; the commands' console output.

A library call (``nas.api``) is silent unless its caller listens: every line goes to ``logging.getLogger("nas")``
(progress at INFO, warnings at WARNING), which has only a NullHandler, as a library's logger should. The
commands install :func:`console_output` for their run: INFO lines on stdout, warnings on stderr, exactly as
printed before; ``--quiet`` keeps the warnings only. A caller replaces it with a handler of its own, or uses
``with console_output():`` for the commands' output.

``say`` and ``warn`` are module-level functions rather than bound methods: objects that keep them (a recorder,
a cache) are pickled by Ray Tune with the searcher, and pickle them by name.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from typing import Iterator, TextIO

LOGGER = logging.getLogger("nas")
LOGGER.addHandler(logging.NullHandler())


def say(line: str) -> None:
    """One line of progress (INFO on the ``nas`` logger)."""
    LOGGER.info(line)


def warn(line: str) -> None:
    """One warning line (WARNING on the ``nas`` logger)."""
    LOGGER.warning(line)


class ConsoleHandler(logging.Handler):
    """The commands' output: INFO and below on stdout, WARNING and above on stderr, each line flushed.

    The streams are looked up at each line (``sys.stdout`` as it is then), so a redirected stream is used."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        try:
            stream.write(self.format(record) + "\n")
            stream.flush()
        except (OSError, ValueError):  # the reader went away: nothing more can be said
            pass


def console_handler() -> ConsoleHandler | None:
    """The console output in place now, if any."""
    return next((h for h in LOGGER.handlers if isinstance(h, ConsoleHandler)), None)


def live_console() -> bool:
    """Whether a status line may be drawn: the console output is on, not quiet, and stdout is a terminal."""
    handler = console_handler()
    return handler is not None and LOGGER.level <= logging.INFO and sys.stdout.isatty()


@contextlib.contextmanager
def console_output(quiet: bool = False) -> Iterator[None]:
    """Print what the toolkit says for the duration (the commands' output; ``quiet``: warnings only), then put
    the ``nas`` logger back as it was."""
    if console_handler() is not None:  # already on (a command calling another): keep the outer one
        yield
        return
    handler = ConsoleHandler()
    level, propagate = LOGGER.level, LOGGER.propagate
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.WARNING if quiet else logging.INFO)
    LOGGER.propagate = False  # a root handler of the caller's would print every line twice
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)
        LOGGER.propagate = propagate


def terminal_width(stream: TextIO) -> int:
    """The columns of the terminal ``stream`` writes to (``COLUMNS`` when set, 80 when it cannot be told)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):  # not a real file (a test's StringIO), or not a terminal
        return shutil.get_terminal_size((80, 24)).columns


def status_line(text: str, stream: TextIO) -> str:
    """What redraws a status line in place: a carriage return, clear to the end of the line, then ``text``
    clipped to one column less than the terminal's width. A line that wrapped would leave a fragment each
    time it is redrawn."""
    width = max(10, terminal_width(stream) - 1)
    if len(text) > width:
        text = text[:width - 1] + "…"
    return "\r\033[K" + text


def human_duration(seconds: float) -> str:
    """``45s``, ``12m 40s``, ``1h 05m``: a duration as a person reads it."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def describe_reward(mode: str, w: float) -> str:
    """``soft reward (w=-0.07)`` or ``hard reward (accuracy at or under the target)``, for log lines and pages."""
    return f"soft reward (w={w:g})" if mode == "soft" else "hard reward (accuracy at or under the target)"
