"""Shared test fixtures: EfficientNet-B0, and a private result cache directory for every test."""
from __future__ import annotations

import pytest

from search_spaces.random_specs import reference
from search_spaces.spec import ArchSpec


@pytest.fixture
def b0() -> ArchSpec:
    return reference("efficientnet_b0")


@pytest.fixture(scope="session")
def shared_ray():
    """One local Ray instance, started as the commands start theirs, for every command a test runs in this
    process: each command joins it instead of starting and stopping its own (about 7 s each)."""
    import ray

    from nas.engine.runner import ray_environment, start_ray

    with ray_environment():  # as a command's runner starts it
        started = start_ray(None)
        yield
        if started:
            ray.shutdown()


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path, monkeypatch):
    """Each test gets its own $NAS_CACHE_DIR: no result cache is shared between tests or with the user's."""
    cache = tmp_path / "nas-cache"
    monkeypatch.setenv("NAS_CACHE_DIR", str(cache))
    return cache


class WritesAMarker:
    """An object that, once unpickled, writes a file: what a crafted data or state file could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)
