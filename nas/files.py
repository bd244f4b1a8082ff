"""Atomic file writes: a crash or a kill never leaves half a file where a whole one was expected."""
from __future__ import annotations

import csv
import fcntl
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from nas.errors import UserInputError

if TYPE_CHECKING:
    from search_spaces.spec import ArchSpec


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it replaces ``path`` in one step.

    The temporary name is the writer's own (two processes filling one cache at once each write their own file;
    the last rename wins, whole) and keeps the suffix (``x.tmp-<pid>-<random>.npy``) so that writers that choose
    the format by suffix (numpy, matplotlib) still do the right thing. On an error the temporary file is removed.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")
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


def append_csv_rows(path: str | os.PathLike, columns: list[str], rows: Iterable[dict[str, Any]]) -> None:
    """Append ``rows`` to a CSV file in one write (a header of ``columns`` first on a new or empty file),
    flushed to disk: a kill leaves every row written whole, at most the last one torn."""
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        handle.flush()
        os.fsync(handle.fileno())


def writable_directory(flag: str, path: str | os.PathLike) -> None:
    """A user error, naming the flag, when ``path`` cannot be created or written (a file, a read-only place)."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        probe = Path(path) / ".nas-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UserInputError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None


def save_spec(spec: "ArchSpec", path: str | os.PathLike) -> Path:
    """Write a B0 spec as JSON, atomically (a crash never leaves half a file); its directory is made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, spec.to_json())


def read_number_rows(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a CSV of numbers that another process may be appending to (metrics.csv): whole rows only,
    a line being written is left for the next read, a row that is not all numbers skipped."""
    if not Path(path).is_file():
        return []
    text = Path(path).read_text()
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    rows = []
    for row in csv.DictReader(text.splitlines()):
        try:
            rows.append({k: float(v) for k, v in row.items()})
        except (TypeError, ValueError):
            continue
    return rows


def run_in_use(run_dir: str | os.PathLike) -> str | None:
    """Who holds ``run_dir``'s RunLock now (e.g. ``nas-search (pid 123)``), or None when no one does."""
    path = Path(run_dir) / ".lock"
    if not path.is_file():
        return None
    with open(path, "a+") as handle:
        holder = _lock_or_holder(handle)
        if holder is None:
            fcntl.flock(handle, fcntl.LOCK_UN)
        return holder


def _lock_or_holder(handle: Any) -> str | None:
    """Take the exclusive lock on an open lock file (None), or say who holds it (what it wrote there)."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        return handle.read().strip() or "another process"
    return None


class RunLock:
    """An exclusive lock on a run directory for as long as one command works in it (``with RunLock(dir):``).

    A second command on the same directory is refused with one line instead of both writing trials.csv. The
    lock is the operating system's (``flock`` on ``.lock``): a killed process releases it, so a stale lock is
    simply taken over.
    """

    def __init__(self, run_dir: str | os.PathLike, command: str = "nas-search") -> None:
        self.path, self.command = Path(run_dir) / ".lock", command
        self._handle = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        holder = _lock_or_holder(handle)
        if holder is not None:
            handle.close()
            raise UserInputError(f"{self.path.parent} is in use by {holder}; wait for it to end, or use another "
                                 f"--out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{self.command} (pid {os.getpid()})\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the lock
            self._handle = None
