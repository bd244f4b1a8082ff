"""SIGTERM (what ``timeout``, schedulers and ``docker stop`` send) stops a command as Ctrl-C does: gracefully,
finished work kept, the resume line printed, exit status 143."""
from __future__ import annotations

import signal
import threading

TERMINATED = threading.Event()  # set once this process has received SIGTERM


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
