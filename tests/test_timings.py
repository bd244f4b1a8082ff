"""Each command's wall times in its run directory (nas/timings.py): one row per stage, whatever its end."""
import time

import pandas as pd
import pytest

from nas.timings import usable_cpus
from nas.timings import COLUMNS, TIMINGS_FILE, Stage, timed


def test_a_stage_is_timed_and_appended_whatever_its_end(tmp_path):
    with timed(tmp_path, "nas-search", "search"):
        time.sleep(0.2)
    with pytest.raises(ValueError, match="broken"):
        with timed(tmp_path, "nas-search", "final stage"):
            raise ValueError("broken")
    with pytest.raises(KeyboardInterrupt):
        with timed(tmp_path, "nas-train", "training"):
            raise KeyboardInterrupt
    with timed(tmp_path, "nas-search", "search") as stage:  # a search stopped gracefully returns
        stage.status = "interrupted"
    rows = pd.read_csv(tmp_path / TIMINGS_FILE)
    assert list(rows.columns) == COLUMNS
    assert list(rows["status"]) == ["finished", "failed", "interrupted", "interrupted"]
    assert list(rows["stage"]) == ["search", "final stage", "training", "search"]
    assert 0.2 <= rows.loc[0, "seconds"] < 5 and rows.loc[1, "seconds"] < 0.2
    assert (rows["cpus"] == usable_cpus()).all() and rows["cpus"].iloc[0] >= 1
    assert 0 <= rows.loc[0, "machine_busy"] <= 1  # a share of the machine's CPU time (Linux; empty: too short)
    assert (rows["load_at_start"] >= 0).all()


def test_a_row_that_cannot_be_written_never_hides_the_error(tmp_path):
    missing = tmp_path / "not-made"  # a command that failed before its directory was made
    with pytest.raises(ValueError, match="the real error"):
        with timed(missing, "nas-train", "training"):
            raise ValueError("the real error")
    assert not missing.exists()
    with pytest.raises(FileNotFoundError):  # finished: the write's own failure is the command's error
        with timed(missing, "nas-train", "training"):
            pass
    assert Stage().status is None
