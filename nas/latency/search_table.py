"""The latency table a search predicts with: a given file, checked, or this machine's own, built once and kept
in the cache directory."""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from nas.console import say
from nas.data.datasets import cache_root
from nas.errors import UserInputError
from nas.latency import tables


def machine_table(device_kind: str, resolution: int, space: Any) -> str:
    """This machine's table (1 thread, batch 1) of ``space`` at ``resolution`` from the cache directory, built
    there (a few minutes) the first time; its path."""
    device = tables.describe_device(device_kind, 1, 1)
    key = tables.space_fingerprint(space) + json.dumps(device, sort_keys=True) + str(resolution)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    path = cache_root() / "latency" / f"{device_kind}-{resolution}px-{digest}.json"
    if not path.is_file():
        say(f"building the latency table of this machine ({device['name']}, 1 thread, batch 1) at "
            f"{resolution}px, once: a few minutes; kept as {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tables.build_table(space, resolution, 1000, device_kind, 1, 1).save(path)
    return str(path)


def search_table(table_file: str | None, device_kind: str | None, resolution: int, space: Any) -> str | None:
    """The table file of a search: ``--latency-table`` as an absolute path, or with ``--latency-device`` this
    machine's table at ``resolution``; None when neither is given. The search's driver reads it (once) and
    checks it against the space and the resolution."""
    if table_file and device_kind:
        raise UserInputError("--latency-table and --latency-device: give one of them")
    if device_kind:
        return machine_table(device_kind, resolution, space)
    return os.path.abspath(table_file) if table_file else None
