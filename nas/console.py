"""The default line printer of the commands.

A module-level function rather than ``print`` itself: objects that keep it (a recorder, a cache) are pickled
by Ray Tune with the searcher, and ``print`` pickles by name as ``builtins.print``, which Ray's tqdm
integration replaces in the driver (``RAY_TQDM_PATCH_PRINT``): pickling then fails.
"""
from __future__ import annotations


def say(line: str) -> None:
    """Print one line to stdout, flushed."""
    print(line, flush=True)
