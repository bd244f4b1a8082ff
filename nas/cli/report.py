"""nas-report: (re)write a run directory's report.html and print its path."""
from __future__ import annotations

import argparse
from typing import Sequence

from nas.cli.common import ArgumentParser, run_command
from nas.files import run_in_use
from nas.report import run_kind, write_report


def _report_parser() -> ArgumentParser:
    p = ArgumentParser(prog="nas-report", description="Write (or rewrite) the report.html of a run directory of "
                       "nas-search, nas-proxy-check or nas-train: one self-contained page that opens offline in "
                       "any browser. Runs write their page themselves as they go; this is for runs made before "
                       "that, or after a crash.")
    p.add_argument("run", help="the run directory, e.g. runs/search-20261201-120000")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _report(args: argparse.Namespace) -> int:
    kind = run_kind(args.run)
    state = None
    if kind == "search" and run_in_use(args.run):
        state = "running"
    print(write_report(args.run, state))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-report``."""
    return run_command("nas-report", _report, _report_parser(), argv)
