"""The product driven as a user drives it, through ``nas.api``, each call in a fresh Python process (spawned):
its wall time includes the start-up a command has, and what the call loads (torch, Ray) leaves with it."""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable


def start(function: Callable[..., Any], *args: Any, **kwargs: Any) -> multiprocessing.Process:
    """``function(*args, **kwargs)`` started in a fresh process (its pid, to watch it while it runs)."""
    process = multiprocessing.get_context("spawn").Process(target=function, args=args, kwargs=kwargs)
    process.start()
    return process


def finished(process: multiprocessing.Process, what: str) -> None:
    """Wait for ``process``; a failed call ends the benchmark with one line (its traceback is on stderr)."""
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"{what} exited {process.exitcode}")


def timed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Seconds of ``function(*args, **kwargs)`` in a fresh process, start-up included."""
    started = time.perf_counter()
    finished(start(function, *args, **kwargs), f"{function.__module__}.{function.__name__}")
    return time.perf_counter() - started


def value(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """What ``function(*args, **kwargs)`` returns, computed in a fresh process."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args, **kwargs).result()
