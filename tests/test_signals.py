"""The watch on a command's local Ray instance: it exits with the right status even where it cannot print."""
import signal

import pytest

from nas import signals


class Exited(Exception):
    pass


class ClosedPipe:
    """stderr after the reader of a pipe was killed with the command."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


@pytest.fixture
def watch(monkeypatch):
    exits = []

    def fake_exit(code):
        exits.append(code)
        raise Exited

    monkeypatch.setattr(signals.os, "_exit", fake_exit)
    monkeypatch.setattr(signals, "WATCH_SECONDS", 0)
    monkeypatch.setattr(signals._Watch, "exit_code", lambda: -signal.SIGTERM)  # the raylet died of a SIGTERM
    monkeypatch.setattr(signals._Watch, "prog", "nas")
    monkeypatch.setattr(signals._Watch, "resume", None)
    return exits


def test_a_dead_ray_after_sigterm_exits_143_with_its_stop_line(watch, monkeypatch, capsys):
    signals.on_stop("nas-search", "nas-search --resume --out run")
    with pytest.raises(Exited):
        signals._watch()
    assert watch == [143]
    assert capsys.readouterr().err == ("nas-search: terminated (SIGTERM) with its local Ray instance; finished work "
                                       "is kept; continue with: nas-search --resume --out run\n")


def test_a_closed_stderr_does_not_keep_the_command_waiting(watch, monkeypatch):
    monkeypatch.setattr(signals.sys, "stderr", ClosedPipe())
    with pytest.raises(Exited):
        signals._watch()
    assert watch == [143]  # before: the print raised, the watch thread died and the command hung in Ray
