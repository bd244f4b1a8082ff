"""What a user sees while a search runs: durations, the status line, and the target sanity warning."""
import io
import logging

import pytest

from nas.console import console_output
from nas.search.progress import Progress, human_duration


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (45.4, "45s"), (60, "1m 00s"), (760, "12m 40s"),
                                           (3900, "1h 05m"), (-3, "0s")])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_status_line_counts_running_trials_best_and_eta():
    clock, state = Clock(), {"done": 0, "best": None}
    progress = Progress(16, lambda: (state["done"], state["best"]), stream=io.StringIO(), live=False, clock=clock)
    assert progress.status() == "0/16 done · no result yet · elapsed 0s · ETA after the first trial"
    progress.trial_started(0, "M6k3·16x1")
    clock.now += 30
    state.update(done=1, best=0.5)
    progress.trial_ended(0)
    progress.trial_started(1, "Dk5·24x2")
    clock.now += 10
    # 1 done in 40 s: 15 to go at that pace
    assert progress.status() == ("1/16 done · trial 1 running 10s · best reward 0.5000 · elapsed 40s · "
                                 "ETA 10m 00s")


def test_a_resumed_search_paces_its_eta_on_this_session_only():
    clock, state = Clock(), {"done": 10}
    progress = Progress(12, lambda: (state["done"], 0.4), stream=io.StringIO(), live=False, clock=clock)
    progress.status()  # 10 were done before this session
    clock.now += 60
    state["done"] = 11
    assert progress.status().endswith("ETA 1m 00s")


def test_lines_always_and_the_status_line_only_on_a_terminal(capsys):
    with console_output():
        progress = Progress(4, lambda: (0, None), live=False)
        progress.trial_started(3, "M6k3·16x1")
        progress.tick(force=True)
        assert capsys.readouterr().out == "trial   3 started   M6k3·16x1\n"
        progress = Progress(4, lambda: (0, None), live=True)
        progress.log("a line")
        progress.close()
    text = capsys.readouterr().out
    assert text.startswith("a line\n\r\033[K0/4 done") and text.endswith("\r\033[K")


def test_a_library_call_says_nothing_unless_its_caller_listens(capsys, caplog):
    """Without the commands' console output the lines go to the ``nas`` logger only: silent by default, read by
    a handler of the caller's (here pytest's), and never a status line."""
    progress = Progress(4, lambda: (0, None))
    assert not progress.live
    progress.trial_started(3, "M6k3·16x1")
    assert capsys.readouterr() == ("", "")
    with caplog.at_level(logging.INFO, logger="nas"):
        progress.log("heard")
    assert [r.getMessage() for r in caplog.records] == ["heard"]


def test_an_implausible_target_is_warned_about_with_the_range():
    from nas.search.config import SearchConfig
    from nas.search.driver import target_warning
    from search_spaces.mnasnet import MnasNetSpace

    space = MnasNetSpace()
    assert target_warning(SearchConfig.of(target_flops=400_000_000, out="x"), space, 1000) is None
    warning = target_warning(SearchConfig.of(target_flops=400, out="x"), space, 1000)
    assert "below the smallest network" in warning and "224 px" in warning
    assert "did you mean --target-flops 400M?" in warning
    warning = target_warning(SearchConfig.of(target_flops=50_000_000_000, out="x"), space, 1000)
    assert "above the largest" in warning and "did you mean" not in warning


def test_with_fitted_widths_the_range_is_the_fits_reach():
    """MnasNet's space at 224 px builds 48M-1.7G FLOPs as decoded; fitted (x0.25 to x2), 8M-6.7G: a 20M
    target is then reachable, a 2M one is not."""
    from nas.search.config import SearchConfig
    from nas.search.driver import target_warning

    fitted = SearchConfig.new(target_flops=20_000_000, out="x", fit_width=True)
    assert fitted.fit_flops and target_warning(fitted, fitted.search_space(), 1000) is None
    plain = SearchConfig.new(target_flops=20_000_000, out="x")
    assert "below the smallest network" in target_warning(plain, plain.search_space(), 1000)
    tiny = SearchConfig.new(target_flops=2_000_000, out="x", fit_width=True)
    assert "widths fitted x0.25 to x2" in target_warning(tiny, tiny.search_space(), 1000)


def test_the_status_line_stays_one_line_on_a_narrow_terminal_whatever_the_trials(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    clock, stream = Clock(), io.StringIO()
    progress = Progress(500, lambda: (3, 0.61), stream=stream, live=True, clock=clock)
    for trial in range(12):
        progress.running[trial] = clock.now - 5 * (12 - trial)  # trial 0 has run longest
    assert "12 running (longest: trial 0, 1m 00s)" in progress.status()
    progress.tick(force=True)
    drawn = stream.getvalue()
    assert drawn.startswith("\r\033[K") and "\n" not in drawn
    line = drawn.rsplit("\r\033[K", 1)[-1]
    assert len(line) == 39 and line == progress.status()[:38] + "…"  # one column spare: no wrap
    monkeypatch.setenv("COLUMNS", "200")
    progress.tick(force=True)
    assert stream.getvalue().rsplit("\r\033[K", 1)[-1] == progress.status()  # wide enough: whole
