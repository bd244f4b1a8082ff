"""Atomic file writes: a crash or a kill never leaves half a file where a whole one was expected."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from search_spaces.spec import ArchSpec


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it replaces ``path`` in one step.

    The temporary name keeps the suffix (``x.tmp.npy``, ``x.tmp.png``) so that writers that choose the format
    by suffix (numpy, matplotlib) still do the right thing. On an error the temporary file is removed.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically (fsynced, then renamed over the old file)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def save_spec(spec: "ArchSpec", path: str | os.PathLike) -> Path:
    """Write a B0 spec as JSON, atomically (a crash never leaves half a file); its directory is made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, spec.to_json())
