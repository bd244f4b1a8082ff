"""Help that tells the truth: every flag explained, every default stated, and answered without heavy imports."""
import subprocess
import sys

import pytest

from nas.cli.export import _export_parser
from nas.cli.latency_table import _latency_table_parser
from nas.cli.profile import _profile_parser
from nas.cli.proxy_check import _proxy_check_parser
from nas.cli.report import _report_parser
from nas.cli.scale import _scale_parser
from nas.cli.search import _search_parser
from nas.cli.train import _train_parser

PARSERS = [_search_parser, _proxy_check_parser, _scale_parser, _profile_parser, _latency_table_parser, _train_parser,
           _export_parser, _report_parser]


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
    assert "the target: one or both (required, except with --resume)" in text and "M6k5se·40x3/2" in text
    assert "nas-search --target-latency TIME" in text


def test_help_imports_neither_torch_nor_ray():
    code = ("import sys; from nas.cli.search import main as search_main\n"
            "try:\n    search_main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'ray', 'fvcore', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def _stated(text: str) -> str | None:
    """The default a help text states: ``(default: X)`` or ``(default X, ...)``."""
    import re

    found = re.search(r"\(default:? ([^)]*)\)", text)
    return found.group(1) if found else None


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(v if isinstance(v, str) else f"{v:g}" for v in value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


@pytest.mark.parametrize("make", PARSERS)
def test_the_stated_default_is_the_default_used(make):
    """What the help says a flag defaults to is what the command takes when the flag is not given: argparse's
    own default, or (flags that default to None) SearchConfig's field of that name, or the paper's coefficients."""
    from nas.cli.scale import GRID_DEFAULTS, _grid_settings
    from nas.network.scaling import PAPER_COEFFICIENTS
    from nas.search.config import FINALISTS_ON_REAL_DATA, SearchConfig

    config = SearchConfig.defaults()
    if make is _train_parser:  # nas-train's recipe flags default to TrainRecipe's fields
        from dataclasses import asdict

        from nas.training.recipe import TrainRecipe

        config = {**{k: v for k, v in asdict(TrainRecipe()).items() if k not in ("lr", "weight_decay")},
                  "workers": 1}
    paper = dict(zip(("alpha", "beta", "gamma"), PAPER_COEFFICIENTS))
    checked = 0
    for action in make()._actions:
        if not action.option_strings or action.nargs == 0 or action.dest == "help":
            continue
        stated = _stated(action.help) if action.help else None
        if action.default is not None:
            expected = action.default
        elif make is _scale_parser and action.dest in paper:
            expected = paper[action.dest]
        elif make is _scale_parser and action.dest in GRID_DEFAULTS:
            expected = GRID_DEFAULTS[action.dest]
        elif make is _scale_parser and action.dest == "proxy_width":  # grid points train at full width
            expected = _grid_settings(make().parse_args(["s.json", "--grid-search"]))[0].width
        elif make is _search_parser and action.dest == "finalists":  # on a user's data; 0 on synthetic (test_config)
            expected = FINALISTS_ON_REAL_DATA
        elif make is not _scale_parser or action.dest not in ("resolution",):
            expected = config.get(action.dest)
        else:
            expected = None
        if expected is None or make in (_profile_parser, _latency_table_parser, _export_parser) and \
                action.default is None:
            continue
        assert stated is not None and stated.startswith(_shown(expected)), \
            f"{action.option_strings}: help states {stated!r}, the default is {expected!r}"
        checked += 1
    # nas-export's and nas-report's flags all default to None (a meaning, stated in words: the test above)
    assert checked == {_search_parser: 18, _proxy_check_parser: 13, _scale_parser: 13, _train_parser: 9,
                       _profile_parser: 5, _latency_table_parser: 7, _export_parser: 0, _report_parser: 0}[make]


def test_every_setting_of_a_search_is_a_flag_and_its_errors_are_said_as_flags(tmp_path, capsys):
    """The flags are checked against the request's fields: each flat setting (nas.search.config.FLAT_NAMES)
    has the flag flag_spelling names, with the setting as its destination, and each other flag is one of the
    request's own options; an error a part raises in its own terms reaches the user as the flag."""
    from nas.cli.common import flag_spelling
    from nas.cli.search import _search_parser, main
    from nas.search.config import FLAT_NAMES

    parser = _search_parser()
    destinations = {option: action.dest for action in parser._actions for option in action.option_strings}
    api_only = {"controller_options"}  # a dict of the controller's own keywords: nas.api.search only
    for name in set(FLAT_NAMES) - api_only:
        assert destinations.get(flag_spelling(name)) in (name, f"{name}_file"), name
    request_options = {"help", "space_file", "fit_width", "max_resolution", "latency_device", "resume", "quiet",
                       "version"}
    assert set(destinations.values()) - set(FLAT_NAMES) == request_options
    for flags, said in ((["--proxy-resolution", "4"], "--proxy-resolution 4: must be 8 to 4096"),
                        (["--flops-window", "2,1"], "--flops-window 2,1: expected 0 <= LO < HI"),
                        (["--target-latency", "5ms"], "--target-latency / --latency-table: a latency target needs")):
        assert main(["--target-flops", "400M", "--out", str(tmp_path / "run"), *flags]) == 2
        assert capsys.readouterr().err.startswith(f"nas-search: error: {said}")


@pytest.mark.parametrize("make", PARSERS)
def test_every_command_says_its_version(make, capsys):
    from nas import __version__

    parser = make()
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"{parser.prog} {__version__} (torch ")


def test_python_m_nas_runs_the_console_scripts_commands():
    import configparser
    from pathlib import Path

    from nas.__main__ import COMMANDS

    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    scripts = dict(line.split(" = ") for line in config["options.entry_points"]["console_scripts"].split("\n")
                   if line.strip())
    assert {f"nas-{name}": f"{module}:main" for name, module in COMMANDS.items()} == scripts
    done = subprocess.run([sys.executable, "-m", "nas", "profile", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("usage: nas-profile")
    done = subprocess.run([sys.executable, "-m", "nas", "serach"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "python -m nas: error: 'serach' is not a command (commands: search, scale, train, " \
                          "export, profile, proxy-check, latency-table, report)\n"
