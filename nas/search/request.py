"""The settings of one nas-search run, made the same way for the command line and for ``nas.api.search``.

Both hand over what was given, as SearchConfig's field names (``given``), and the few settings that are not
fields (the space by name or file, the fit, the largest size, the latency device); this module checks the run
directory, reads a resumed run's own settings, and returns the configuration (and a resumed run's saved one).
Errors are one line, in the flags' words, for both.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nas.console import warn
from nas.errors import UserInputError
from nas.files import writable_directory
from nas.latency.search_table import search_table
from nas.search.config import DEFAULTS, SearchConfig
from nas.search.resuming import resumed
from nas.search.run import open_run, trained_classes
from nas.search.run_files import set_aside_orphaned_run
from search_spaces.mnasnet import default_space_for, space_from_dict, space_named
from search_spaces.space import SpaceError

def default_out() -> str:
    """``runs/<YYYYmmdd-HHMMSS>``: a new run's directory when none is given."""
    return str(Path("runs") / time.strftime("%Y%m%d-%H%M%S"))


def search_space_named(name: str | None, resolution: int | None = None) -> Any:
    """The space ``--space`` names (a file or a shipped space), checked; None: the default one for networks at
    ``resolution``."""
    if name is None:
        return default_space_for(resolution)
    try:
        return space_named(str(name))
    except SpaceError as exc:
        raise UserInputError(f"--space {exc}") from None


def search_request(given: dict[str, Any], *, resume: bool = False, space: str | None = None,
                   fit_width: bool | None = None, max_resolution: int | None = None,
                   latency_device: str | None = None) -> tuple[SearchConfig, SearchConfig | None]:
    """The SearchConfig of a new run, or of a resumed one together with its saved configuration.

    ``given``: SearchConfig's fields as given (None values left out); ``data`` may be a function that writes the
    data into the run directory and returns what ``--data`` would be (called once the directory is checked).
    ``space``: a space's name or file (``given["space"]``, a space's dict, is taken as it is).
    """
    given = dict(given)
    if space is not None:
        given["space"] = search_space_named(space).config.to_dict()
    if "start_from" in given:  # spec files by absolute path: a resume from another directory finds them
        given["start_from"] = tuple(str(Path(item).resolve()) if Path(item).is_file() else item
                                    for item in given["start_from"])
    if resume:
        return _resumed(given, fit_width, max_resolution, latency_device)
    if given.get("target_flops") is None and given.get("target_latency_ms") is None:
        raise UserInputError("a target is required: --target-flops 400M, --target-latency 20ms, or both")
    out = given.get("out") or default_out()
    _check_new_out(out)
    given["out"] = out
    if callable(given.get("data")):
        given["data"] = given["data"](Path(out))
    if given.get("latency_table") or latency_device:
        resolution = given.get("resolution") or DEFAULTS["resolution"]
        space_now = (space_from_dict(given["space"]) if "space" in given
                     else search_space_named(None, given.get("resolution")))
        given["latency_table"] = search_table(given.get("latency_table"), latency_device, resolution, space_now)
    return SearchConfig.new(fit_width=fit_width, max_resolution=max_resolution,
                            **{"target_flops": None, **given}), None


def _resumed(given: dict[str, Any], fit_width: bool | None, max_resolution: int | None,
             latency_device: str | None) -> tuple[SearchConfig, SearchConfig]:
    for flag, value in (("--fit-width", fit_width), ("--max-resolution", max_resolution)):
        if value is not None:
            raise UserInputError(f"{flag}: set when a search starts (the run's space.json keeps it); start a new "
                                 f"run with another --out to change it")
    out = given.get("out")
    if not out:
        raise UserInputError("--resume needs --out, the run directory to continue")
    if callable(given.get("data")):  # a resumed run reads its own data
        given.pop("data")
    saved = open_run(Path(out), "--resume").config
    table = search_table(given.get("latency_table"), latency_device, saved.objective.resolution, saved.search_space())
    if table:
        given["latency_table"] = table
    config = resumed(saved, given, num_classes=trained_classes(out))  # a moved run resumes where it is now
    writable_directory("--out", out)
    return config, saved


def _check_new_out(out: str) -> None:
    """A new run's directory: writable, not holding a search; an orphaned trials.csv set aside (kept)."""
    writable_directory("--out", out)
    if not (Path(out) / "trials.csv").exists():
        return
    if (Path(out) / "search.json").exists():
        raise UserInputError(f"{out} already holds a search; use --resume to continue it or another --out")
    kept = set_aside_orphaned_run(Path(out))  # no settings: it cannot be resumed; nothing of it is lost
    warn(f"warning: {out} held trials.csv without its search.json; its files were moved to {kept}, and a new "
         f"search starts there (the result cache serves the candidates already trained)")
