"""nas.api leaves its caller alone: its signal handlers, environment and output as they were, and the same
settings made from Python as from the command line."""
import logging
import os
import signal
import subprocess
import sys

import pytest

from nas import signals
from nas.api import search_config
from nas.cli.search import _search_config, _search_parser
from nas.errors import UserInputError

SETTINGS = dict(data="synthetic:classes=3,images=400", proxy_resolution=16, steps=2, batch_size=16, resolution=32,
                space="downsampling", flops_window=(0, float("inf")), scheduler="none", cpus_per_trial=1,
                trials=1, finalists=0)


def _caller_handler(signum, frame):  # what a caller of the library had installed
    raise AssertionError("not to be called")


@pytest.mark.usefixtures("shared_ray")
def test_a_search_keeps_the_callers_handlers_environment_and_output(tmp_path, capsys, caplog):
    from nas import api

    import ray.tune  # noqa: F401 - these set variables of their own when imported (tensorboardX, threadpoolctl):
    import tensorboardX, threadpoolctl  # noqa: F401, E401 - imported before the snapshot: what is compared is ours

    before = {signum: signal.signal(signum, _caller_handler) for signum in (signal.SIGTERM, signal.SIGINT)}
    environment = dict(os.environ)
    try:
        with caplog.at_level(logging.INFO, logger="nas"):
            found = api.search("5M", out=tmp_path / "run", **SETTINGS)
        assert found.finished and len(found.trials) == 1
        assert signal.getsignal(signal.SIGTERM) is _caller_handler
        assert signal.getsignal(signal.SIGINT) is _caller_handler
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    assert dict(os.environ) == environment
    assert capsys.readouterr() == ("", "")  # nothing printed ...
    heard = [record.getMessage() for record in caplog.records if record.name == "nas"]
    assert any(line.startswith("trial   0 started") for line in heard)  # ... and every line said to the logger


def test_importing_the_library_sets_no_environment_variable():
    code = ("import os, ray.tune, threadpoolctl; before = dict(os.environ); "
            "import nas.api, nas.engine.runner, nas.search.driver; "
            "assert dict(os.environ) == before, set(os.environ) ^ set(before)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_outside_a_command_a_dead_ray_never_exits_the_process(monkeypatch):
    """Only a command (run_command enters as_command) exits when its Ray dies; a library call is left to
    Ray's own error."""
    monkeypatch.setattr(signals._Watch, "exit_code", None)
    signals.watch_ray(lambda: -signal.SIGTERM)
    assert signals._Watch.exit_code is None  # no watch armed
    with signals.as_command("nas-search"):
        signals.watch_ray(lambda: None)
        assert signals._Watch.exit_code is not None
    assert signals._Watch.exit_code is None and not signals._Watch.command


def _flags(settings):
    flags = []
    for name, value in settings.items():
        if value is None:
            continue
        flag = "--" + {"space": "space"}.get(name, name).replace("_", "-")
        if isinstance(value, tuple):
            value = ",".join(f"{v:g}" for v in value)
        if value is True:
            flags.append(flag)
        else:
            flags += [flag, str(value)]
    return flags


@pytest.mark.parametrize("extra", [{}, {"fit_width": True, "max_resolution": 48, "controller": "evolution",
                                        "start_from": ("b0",), "seed": 3,
                                        "proxy_resolution": None}])
def test_the_command_line_and_the_api_make_the_same_settings(tmp_path, extra):
    settings = {**SETTINGS, **extra}
    from_api, _ = search_config("5M", out=tmp_path / "run", **settings)  # neither writes the run's files
    start = settings.pop("start_from", None)
    argv = ["--target-flops", "5M", "--out", str(tmp_path / "run"), *_flags(settings)]
    argv += ["--start-from", *start] if start else []
    from_cli, _ = _search_config(_search_parser().parse_args(argv))
    assert from_api.to_dict() == from_cli.to_dict() and from_cli.out == str(tmp_path / "run")


def test_the_api_refuses_a_directory_that_holds_a_search_as_the_command_does(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "trials.csv").write_text("trial\n")
    (tmp_path / "run" / "search.json").write_text("{}")
    with pytest.raises(UserInputError, match="already holds a search; use --resume"):
        search_config("5M", out=tmp_path / "run", **SETTINGS)
    (tmp_path / "file").write_text("")
    with pytest.raises(UserInputError, match="cannot write there"):
        search_config("5M", out=tmp_path / "file", **SETTINGS)


@pytest.mark.usefixtures("shared_ray")
def test_quiet_keeps_the_results_and_drops_the_progress_lines(tmp_path, capsys):
    from nas.cli.search import main

    settings = {name: value for name, value in SETTINGS.items() if name != "finalists"}
    assert main(["--target-flops", "5M", "--out", str(tmp_path / "run"), "--quiet", *_flags(settings)]) == 0
    printed = capsys.readouterr()
    assert "top 1 of 1 candidates" in printed.out and "trial   0 started" not in printed.out
    assert "held-out split has 80 images" in printed.err  # warnings stay
    assert not logging.getLogger("nas").handlers[1:]  # the console output removed after the command


def test_importing_the_library_loads_neither_torch_nor_ray():
    """``import nas.api`` stays light: torch and Ray load when a call needs them."""
    code = "import sys, nas.api; assert not {'torch', 'ray'} & set(sys.modules), {'torch', 'ray'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
