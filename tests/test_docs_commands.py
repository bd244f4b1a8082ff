"""Every nas-* command line shown in the README and docs/ is one its command accepts: the flags exist, their
values have the right form, and no two flags conflict at parse time. (The README's walk is also run whole, at
small settings, by test_readme.py.)"""
import re
import shlex
from pathlib import Path

import pytest

from nas.cli.common import UsageError
from nas.cli.export import _export_parser
from nas.cli.latency_table import _latency_table_parser
from nas.cli.profile import _profile_parser
from nas.cli.proxy_check import _proxy_check_parser
from nas.cli.report import _report_parser
from nas.cli.scale import _check_mode, _scale_parser
from nas.cli.search import _search_parser
from nas.cli.train import _train_parser

ROOT = Path(__file__).resolve().parents[1]
PARSERS = {"nas-search": _search_parser, "nas-proxy-check": _proxy_check_parser, "nas-scale": _scale_parser,
           "nas-profile": _profile_parser, "nas-latency-table": _latency_table_parser, "nas-train": _train_parser,
           "nas-export": _export_parser, "nas-report": _report_parser}
PLACEHOLDERS = {"<name>": "mine", "<time>": "20260101-000000", "HEAD_IP": "10.0.0.1"}


def shown_commands() -> list[tuple[str, str]]:
    """(file, line) for each nas-* command in a bash block of the README and docs/ (continuations joined;
    synopses with [optional] parts left out)."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split("#")[0].strip()
                line = re.sub(r"^(\w+=\S+ )+", "", line)  # environment assignments before the command
                if line.startswith("nas-") and "[" not in line:
                    found.append((path.name, line))
    return found


def test_the_docs_show_commands_of_every_kind():
    commands = {line.split()[0] for _, line in shown_commands()}
    assert commands >= {"nas-search", "nas-train", "nas-export", "nas-scale", "nas-report", "nas-latency-table",
                        "nas-profile", "nas-proxy-check"}


@pytest.mark.parametrize("where, line", shown_commands())
def test_each_command_shown_parses(where, line, capsys):
    for placeholder, value in PLACEHOLDERS.items():
        line = line.replace(placeholder, value)
    command, *argv = shlex.split(line)
    try:
        args = PARSERS[command]().parse_args(argv)
        if command == "nas-scale":
            _check_mode(args)  # one way of scaling, with what it needs
    except (SystemExit, UsageError) as exc:
        pytest.fail(f"{where}: {line!r} is refused by {command}: {exc} {capsys.readouterr().err.strip()}")
