"""``python -m nas COMMAND ...``: the commands without their console scripts (``python -m nas search ...`` is
``nas-search ...``), for an environment whose scripts folder is not on PATH."""
from __future__ import annotations

import importlib
import sys
from typing import Sequence

from nas.versions import version_line

# command -> the module whose main() it runs (the console scripts of setup.cfg, without "nas-")
COMMANDS = {
    "search": "nas.cli.search",
    "scale": "nas.cli.scale",
    "train": "nas.cli.train",
    "export": "nas.cli.export",
    "profile": "nas.cli.profile",
    "proxy-check": "nas.cli.proxy_check",
    "latency-table": "nas.cli.latency_table",
    "report": "nas.cli.report",
}

USAGE = (f"usage: python -m nas COMMAND [ARGS...]   (the same as nas-COMMAND [ARGS...])\n"
         f"commands: {', '.join(COMMANDS)}\n"
         f"python -m nas COMMAND --help: that command's flags")


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if words else 2
    if words[0] == "--version":
        print(version_line("nas"))
        return 0
    if words[0] not in COMMANDS:
        print(f"python -m nas: error: {words[0]!r} is not a command (commands: {', '.join(COMMANDS)})",
              file=sys.stderr)
        return 2
    return importlib.import_module(COMMANDS[words[0]]).main(words[1:])


if __name__ == "__main__":
    sys.exit(main())
