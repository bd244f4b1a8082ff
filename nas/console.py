"""The default line printer of the commands, and wording they share (durations, the reward).

A module-level function rather than ``print`` itself: objects that keep it (a recorder, a cache) are pickled
by Ray Tune with the searcher, and ``print`` pickles by name as ``builtins.print``, which Ray's tqdm
integration replaces in the driver (``RAY_TQDM_PATCH_PRINT``): pickling then fails.
"""
from __future__ import annotations


def say(line: str) -> None:
    """Print one line to stdout, flushed."""
    print(line, flush=True)


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
