"""The SQLite result cache: keys, values, fingerprints, and failures that only warn."""
import pickle

import numpy as np
import pytest

from nas.engine.cache import ResultCache, arch_key, proxy_fingerprint
from nas.data.datasets import ProxyData
from search_spaces.mnasnet import default_space


def _spec(index=0, resolution=224):
    space = default_space()
    return space.decode(space.sample(np.random.default_rng(index)), resolution=resolution, num_classes=10)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 255, (20, 8, 8, 3), dtype=np.uint8)
    y = rng.integers(0, 2, 20)
    return ProxyData("toy", x[:16], y[:16], x[16:], y[16:], 2)


def test_put_then_get_by_architecture_and_proxy(tmp_path):
    cache = ResultCache(tmp_path / "r.sqlite", proxy="A", warn=pytest.fail)
    spec = _spec()
    cache.put(spec, {"accuracy": 0.5, "flops": 123, "params": 45, "seconds": 6.5, "final_loss": "1.25"}, run="r1")
    hit = cache.get(spec.replace(name="renamed"))  # the name is not part of the architecture
    assert (hit.accuracy, hit.flops, hit.params, hit.resolution, hit.num_classes) == (0.5, 123, 45, 224, 10)
    assert (hit.seconds, hit.final_loss, hit.run) == (6.5, 1.25, "r1")
    assert cache.get(_spec(1)) is None
    assert ResultCache(tmp_path / "r.sqlite", proxy="B").get(spec) is None  # another proxy
    cache.put(spec, {"accuracy": 0.9, "flops": 1, "params": 1}, run="r2")  # the first result is kept
    assert cache.get(spec).accuracy == 0.5 and cache.hits == 2
    journal = cache.connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"


def test_the_key_is_the_block_strings_with_stem_head_and_activation():
    spec = _spec()
    key = arch_key(spec)
    assert all(text in key for text in spec.block_strings) and key.startswith("stem32 ")
    assert arch_key(spec.replace(activation="relu")) != key
    assert arch_key(spec.replace(resolution=64)) == key  # counted FLOPs are stored with their resolution


def test_the_fingerprint_changes_with_data_budget_seed_and_trainer():
    base = proxy_fingerprint(_data(0), {"steps": 300}, 0, 1)
    assert proxy_fingerprint(_data(0), {"steps": 300}, 0, 1) == base
    assert len({base, proxy_fingerprint(_data(1), {"steps": 300}, 0, 1),
                proxy_fingerprint(_data(0), {"steps": 100}, 0, 1),
                proxy_fingerprint(_data(0), {"steps": 300}, 1, 1),
                proxy_fingerprint(_data(0), {"steps": 300}, 0, 2)}) == 5


def test_a_corrupt_file_warns_once_and_disables_the_cache(tmp_path):
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"garbage" * 1000)
    warnings = []
    cache = ResultCache(path, proxy="A", warn=warnings.append)
    assert not cache.enabled and cache.get(_spec()) is None
    cache.put(_spec(), {"accuracy": 0.5, "flops": 1, "params": 1}, run="r")
    assert len(warnings) == 1 and str(path) in warnings[0] and "continuing without it" in warnings[0]


def test_a_locked_database_warns_and_the_caller_goes_on(tmp_path):
    import sqlite3

    path = tmp_path / "r.sqlite"
    warnings = []
    cache = ResultCache(path, proxy="A", warn=warnings.append)
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the lock for longer than the cache waits
    try:
        cache.put(_spec(), {"accuracy": 0.5, "flops": 1, "params": 1}, run="r")
    finally:
        blocker.rollback()
        blocker.close()
    assert len(warnings) == 1 and "locked" in warnings[0] and not cache.enabled


def test_pickled_cache_reopens_its_connection(tmp_path):
    cache = ResultCache(tmp_path / "r.sqlite", proxy="A", warn=pytest.fail)
    cache.put(_spec(), {"accuracy": 0.5, "flops": 1, "params": 1}, run="r")
    copy = pickle.loads(pickle.dumps(cache))  # Ray Tune pickles its searcher, and with it the cache
    assert copy.enabled and copy.get(_spec()).accuracy == 0.5
