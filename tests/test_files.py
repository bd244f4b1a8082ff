"""Atomic writes: two writers of one file at once, and a failed write."""
from pathlib import Path

import numpy as np
import pytest

from nas.files import atomic_path, atomic_write


def test_two_writers_of_one_file_each_write_their_own_temporary(tmp_path: Path) -> None:
    """Two processes filling one data cache at once (two searches started together) used to share the temporary
    name: the first rename took the other's file away and the other failed with FileNotFoundError."""
    target = tmp_path / "x.npy"
    with atomic_path(target) as first:
        np.save(first, np.zeros(3))
        with atomic_path(target) as second:
            assert second != first
            np.save(second, np.ones(3))
        assert np.load(target).tolist() == [1, 1, 1]
    assert np.load(target).tolist() == [0, 0, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = atomic_write(tmp_path / "table.csv", "a,b\n1,2\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk gone")
    assert target.read_text() == "a,b\n1,2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]
