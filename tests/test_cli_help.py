"""Help that tells the truth: every flag explained, every default stated, and answered without heavy imports."""
import subprocess
import sys

import pytest

from nas.cli.latency_table import _latency_table_parser
from nas.cli.profile import _profile_parser
from nas.cli.proxy_check import _proxy_check_parser
from nas.cli.scale import _scale_parser
from nas.cli.search import _search_parser

PARSERS = [_search_parser, _proxy_check_parser, _scale_parser, _profile_parser, _latency_table_parser]


@pytest.mark.parametrize("make", PARSERS)
def test_every_flag_has_help_and_states_its_default(make):
    parser = make()
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help, f"{action.option_strings} has no help"
        flag_only = action.nargs == 0  # store_true: off unless given
        assert flag_only or "default" in action.help or "required" in action.help or action.required, \
            f"{action.option_strings}: default not stated"


def test_search_help_shows_the_required_target_and_explains_the_notation():
    text = _search_parser().format_help()
    assert text.startswith("usage: nas-search --target-flops FLOPS")
    assert "the target: one or both (required, except with --resume)" in text and "M6k5se·40x3" in text
    assert "nas-search --target-latency TIME" in text


def test_help_imports_neither_torch_nor_ray():
    code = ("import sys; from nas.cli.search import main as search_main\n"
            "try:\n    search_main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'ray', 'fvcore', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
