"""report.html: one self-contained page per run directory (a search, a proxy check or a nas-train run),
written as the run goes and rewritten by ``nas-report``."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator

from nas.errors import UserInputError
from nas.report.page import REPORT_FILE

__all__ = ["REPORT_FILE", "live_report", "refresh_report", "run_kind", "write_report"]


def run_kind(run_dir: str | Path) -> str:
    """Which command made ``run_dir``: "search", "proxy-check" or "train"; a UserInputError when none did."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserInputError(f"{run_dir}: no such run directory")
    if (run_dir / "search.json").is_file():
        return "search"
    if (run_dir / "proxy_check.csv").is_file():
        return "proxy-check"
    if (run_dir / "train.json").is_file():
        return "train"
    raise UserInputError(f"{run_dir}: not a run directory of nas-search, nas-proxy-check or nas-train (none of "
                         f"search.json, proxy_check.csv, train.json there)")


def write_report(run_dir: str | Path, state: str | None = None) -> Path:
    """(Re)write ``run_dir/report.html`` for whichever command made the run; the page's path. ``state``: what
    the command writing it knows: "running" (the page reloads itself in a browser), "finished" or "interrupted";
    None (nas-report, after the fact): read from the run's files, and the page does not reload."""
    kind = run_kind(run_dir)
    if kind == "search":
        from nas.report.search_page import write_search_report

        return write_search_report(run_dir, state)
    from nas.report.other_pages import write_proxy_check_report, write_train_report

    live = state == "running"
    return write_proxy_check_report(run_dir, live) if kind == "proxy-check" else write_train_report(run_dir, live)


def refresh_report(run_dir: str | Path, state: str | None = None,
                   warn: Callable[[str], None] | None = None) -> str | None:
    """Rewrite the page as a run goes: None when written, else why not, also passed to ``warn`` as a warning
    line (the command goes on: the page is a view of the run's files, never a reason to stop it)."""
    try:
        write_report(run_dir, state)
    except Exception as exc:  # noqa: BLE001 - see above
        problem = f"report.html not written ({type(exc).__name__}: {exc}); nas-report {run_dir} writes it later"
        if warn is not None:
            warn(f"warning: {problem}")
        return problem
    return None


@contextlib.contextmanager
def live_report(run_dir: str | Path, warn: Callable[[str], None] | None = None) -> Iterator[None]:
    """The page of work done in the block: written "running" (it reloads itself in a browser) on entry,
    "finished" when the block ends, "interrupted" when it raises (the page stops reloading either way)."""
    refresh_report(run_dir, "running", warn)
    try:
        yield
    except BaseException:
        refresh_report(run_dir, "interrupted", warn)
        raise
    refresh_report(run_dir, "finished", warn)
