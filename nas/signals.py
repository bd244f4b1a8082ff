"""SIGTERM (what ``timeout``, schedulers and ``docker stop`` send) stops a command as Ctrl-C does: gracefully,
finished work kept, the resume line printed, exit status 143.

``timeout`` and most schedulers signal the command's whole process group, and a local Ray instance's processes
are in it: they die at once, the graceful stop can no longer finish, the command's main thread waits inside
Ray for a server that is gone (where no Python signal handler runs), and Ray's core aborts it a minute later in
its own words. So while a command holds a local Ray instance, a watch thread (``watch_ray``) checks that its
processes are alive; when one has died after a SIGTERM the command prints its stop line (``on_stop``) and exits
143 at once (without a SIGTERM: a one-line failure, exit 1). What it had finished was written as it finished
(trials.csv, checkpoints), and ``--resume`` continues from there.

Only a command exits its process (:func:`as_command`, which ``run_command`` enters): a library call
(``nas.api``) never ends its caller's process, and puts back the signal handlers it found
(:func:`handlers_kept`)."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Callable, Iterator

TERMINATED = threading.Event()  # set once this process has received SIGTERM
WATCH_SECONDS = 0.5  # how often the watch looks at the local Ray instance


class _Watch:
    """What this command says if its Ray instance dies under it, and how it learns that it has."""
    lock = threading.Lock()
    prog = "nas"
    resume: str | None = None  # the command that continues the run, when there is one
    exit_code: Callable[[], int | None] | None = None  # None while alive; the server's exit status once dead
    thread: threading.Thread | None = None
    command = False  # whether this process runs a command (which may exit it), not a library call


@contextlib.contextmanager
def as_command(prog: str) -> Iterator[None]:
    """For the duration, this process is the command ``prog``'s own: a dead Ray instance under it exits it."""
    _Watch.prog, _Watch.resume, _Watch.command = prog, None, True
    try:
        yield
    finally:
        watch_ray(None)
        _Watch.prog, _Watch.resume, _Watch.command = "nas", None, False


@contextlib.contextmanager
def handlers_kept() -> Iterator[None]:
    """Put back the SIGINT and SIGTERM handlers in place now when the block ends (Ray's init, Tune's run and
    :func:`stop_on_sigterm` replace them); off the main thread, where handlers cannot be set, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    fallback = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    try:
        yield
    finally:
        for signum, handler in kept.items():  # None: set from outside Python; Python's default instead
            signal.signal(signum, handler if handler is not None else fallback[signum])


def on_stop(prog: str, resume: str | None = None) -> None:
    """Who the command is, and (``resume``) the command that continues its run, for the line printed when it is
    terminated with its Ray instance."""
    _Watch.prog, _Watch.resume = prog, resume


def watch_ray(exit_code: Callable[[], int | None] | None) -> None:
    """From now on, ``exit_code`` tells whether the command's local Ray instance has died (None: alive); None
    ends the watch (before a shutdown on purpose: it waits for a look in progress). Nothing outside a command
    (:func:`as_command`): a library call does not exit its caller's process."""
    with _Watch.lock:
        _Watch.exit_code = exit_code if _Watch.command else None
        if exit_code is not None and _Watch.thread is None:
            _Watch.thread = threading.Thread(target=_watch, name="ray-watch", daemon=True)
            _Watch.thread.start()


def _watch() -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        with _Watch.lock:
            code = _Watch.exit_code() if _Watch.exit_code is not None else None
            if code is None:
                continue
            if TERMINATED.is_set() or code == -signal.SIGTERM:
                then = f"; continue with: {_Watch.resume}" if _Watch.resume else ""
                _say_and_exit(f"{_Watch.prog}: terminated (SIGTERM) with its local Ray instance; finished work is "
                              f"kept{then}", 143)
            _say_and_exit(f"{_Watch.prog}: failed: its local Ray instance stopped under it (exit status {code}); "
                          f"finished work is kept", 1)


def _say_and_exit(line: str, code: int) -> None:
    """Print ``line`` where it can still be read and exit: a closed stderr (the reader of a pipe was killed
    with the command) must not keep the command waiting on a dead Ray."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
    finally:
        os._exit(code)


def _as_interrupt(signum: int, frame: object) -> None:
    TERMINATED.set()
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        raise KeyboardInterrupt  # SIGINT is ignored (a background job of a script): no handler would raise it
    signal.raise_signal(signal.SIGINT)  # Ray Tune's graceful stop, or a KeyboardInterrupt outside a run


def stop_on_sigterm() -> None:
    """Handle SIGTERM as Ctrl-C from now on (main thread only; Ray's init installs a handler that exits at
    once, so the runner calls this again after starting Ray)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _as_interrupt)


class InterruptWatch:
    """Whether a stop (Ctrl-C, or SIGTERM as Ctrl-C) has come since :meth:`arm`, for code that Ray Tune's loop
    calls (a searcher). Tune's SIGINT handler only sets an event of its own, and puts back the handler it
    replaced when it fires: a handler different from the one seen at ``arm`` means Tune has been stopped."""

    def __init__(self) -> None:
        self.handler: object = None

    def arm(self) -> None:
        """Remember the SIGINT handler in place now (call it from inside the Tune run, once)."""
        if self.handler is None:
            self.handler = signal.getsignal(signal.SIGINT)

    def fired(self) -> bool:
        return TERMINATED.is_set() or (self.handler is not None and signal.getsignal(signal.SIGINT) is not self.handler)
