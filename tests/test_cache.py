"""The SQLite result cache: keys, values, fingerprints, and failures that only warn."""
import pickle

import numpy as np
import pytest

from nas.data.datasets import ImageSplits
from nas.engine.cache import ResultCache, arch_key, describe_data, proxy_fingerprint
from nas.engine.job import TRAINER_VERSION, Job, Measurement
from nas.training.recipe import proxy_recipe
from search_spaces.mnasnet import default_space


def _spec(index=0, resolution=224):
    space = default_space()
    return space.decode(space.sample(np.random.default_rng(index)), resolution=resolution, num_classes=10)


def _job(spec, steps=300, seed=0, data="A", **fields):
    return Job(spec=spec.to_dict(), budget=proxy_recipe(steps=steps), seed=seed, data=data, **fields)


def _cache(path, warn=pytest.fail):
    """A cache over two data sets, ``A`` and ``B`` (as a command with a proxy and a reference holds)."""
    return ResultCache(path, {"A": describe_data(_data(0)), "B": describe_data(_data(1))}, warn=warn)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 255, (20, 8, 8, 3), dtype=np.uint8)
    y = rng.integers(0, 2, 20)
    return ImageSplits("toy", x[:16], y[:16], x[16:], y[16:], 2)


def test_put_then_get_by_architecture_and_proxy(tmp_path):
    cache = _cache(tmp_path / "r.sqlite")
    spec = _spec()
    cache.put(_job(spec), Measurement(accuracy=0.5, flops=123, params=45, seconds=6.5, final_loss=1.25,
                                      train_loss=1.5), run="r1")
    hit = cache.get(_job(spec.replace(name="renamed")))  # the name is not part of the architecture
    assert (hit.status, hit.accuracy, hit.flops, hit.params, hit.seconds, hit.final_loss, hit.train_loss) == (
        "ok", 0.5, 123, 45, 6.5, 1.25, 1.5)
    stored = cache.connection.execute("SELECT resolution, num_classes, run FROM results").fetchall()
    assert stored == [(224, 10, "r1")]
    assert cache.get(_job(_spec(1))) is None
    assert cache.get(_job(spec, data="B")) is None  # another proxy: other data
    assert cache.get(_job(spec, seed=1)) is None  # another seed
    assert cache.get(_job(spec, seed=1, cache_seed=0)) is not None  # cached under the same seed
    cache.put(_job(spec), Measurement(accuracy=0.9, flops=1, params=1), run="r2")  # the first result is kept
    cache.put(_job(_spec(1)), Measurement(status="failed", accuracy=0.0), run="r2")  # a failure is not kept
    assert cache.get(_job(spec)).accuracy == 0.5 and cache.get(_job(_spec(1))) is None and cache.hits == 3
    journal = cache.connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"


def test_the_key_is_the_block_strings_with_stem_head_and_activation():
    spec = _spec()
    key = arch_key(spec)
    assert all(text in key for text in spec.block_strings) and key.startswith("stem32 ")
    assert arch_key(spec.replace(activation="relu")) != key
    assert arch_key(spec.replace(resolution=64)) == key  # counted FLOPs are stored with their resolution


def test_the_fingerprint_changes_with_data_budget_seed_resolution_and_trainer(monkeypatch):
    spec = _spec()
    data, other = describe_data(_data(0)), describe_data(_data(1))
    base = proxy_fingerprint(data, _job(spec))
    assert proxy_fingerprint(describe_data(_data(0)), _job(spec)) == base
    assert proxy_fingerprint(data, _job(spec, rungs=(75, 150))) == base  # where a trial reports is not a result
    variants = {base, proxy_fingerprint(other, _job(spec)), proxy_fingerprint(data, _job(spec, steps=100)),
                proxy_fingerprint(data, _job(spec, seed=1)), proxy_fingerprint(data, _job(spec, train_resolution=12)),
                proxy_fingerprint(data, _job(spec, train_width=0.5))}
    assert proxy_fingerprint(data, _job(spec, train_width=1.0)) == base  # full width: as before the field existed
    monkeypatch.setattr("nas.engine.cache.TRAINER_VERSION", TRAINER_VERSION + 1)
    variants.add(proxy_fingerprint(data, _job(spec)))
    assert len(variants) == 7


def test_a_corrupt_file_warns_once_and_disables_the_cache(tmp_path):
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"garbage" * 1000)
    warnings = []
    cache = _cache(path, warn=warnings.append)
    assert not cache.enabled and cache.get(_job(_spec())) is None
    cache.put(_job(_spec()), Measurement(accuracy=0.5, flops=1, params=1), run="r")
    assert len(warnings) == 1 and str(path) in warnings[0] and "continuing without it" in warnings[0]


def test_a_locked_database_warns_and_the_caller_goes_on(tmp_path):
    import sqlite3

    path = tmp_path / "r.sqlite"
    warnings = []
    cache = _cache(path, warn=warnings.append)
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the lock for longer than the cache waits
    try:
        cache.put(_job(_spec()), Measurement(accuracy=0.5, flops=1, params=1), run="r")
    finally:
        blocker.rollback()
        blocker.close()
    assert len(warnings) == 1 and "locked" in warnings[0] and not cache.enabled


def test_pickled_cache_reopens_its_connection(tmp_path):
    cache = _cache(tmp_path / "r.sqlite")
    cache.put(_job(_spec()), Measurement(accuracy=0.5, flops=1, params=1), run="r")
    copy = pickle.loads(pickle.dumps(cache))  # Ray Tune pickles its searcher, and with it the cache
    assert copy.enabled and copy.get(_job(_spec())).accuracy == 0.5


def test_a_stem_that_keeps_the_resolution_is_another_architecture():
    from search_spaces.spec import architecture_hash

    spec = default_space().decode([0] * 42)
    kept = spec.replace(stem_stride=1)
    assert arch_key(kept) != arch_key(spec) and architecture_hash(kept) != architecture_hash(spec)
    assert arch_key(spec).startswith("stem32 ")  # a stride-2 stem keys as before: cached results still serve


def test_a_cache_from_before_the_training_loss_gains_the_column_and_keeps_its_rows(tmp_path):
    import sqlite3

    from nas.engine import cache as cache_module

    path = tmp_path / "old.sqlite"
    old_schema = cache_module.SCHEMA.replace("    train_loss REAL,\n", "")
    with sqlite3.connect(path) as connection:
        connection.execute(old_schema)
        columns = [c for c in cache_module.VALUE_COLUMNS if c != "train_loss"]
        connection.execute(f"INSERT INTO results (proxy, arch, {', '.join(columns)}) VALUES "
                           f"('p', 'a', {', '.join('?' * len(columns))})", (0.5, 1, 1, 224, 10, 1.0, 1.0, 1.0, 1.0,
                                                                            0.0, "r"))
    cache = _cache(path)
    assert cache.connection.execute("SELECT accuracy, train_loss FROM results").fetchall() == [(0.5, None)]
    spec = _spec()
    cache.put(_job(spec), Measurement(accuracy=0.7, flops=1, params=1, train_loss=2.0), run="new")
    assert cache.get(_job(spec)).train_loss == 2.0
