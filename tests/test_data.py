import os
import pickle

import numpy as np
import pytest

from conftest import WritesAMarker
from nas.data.datasets import DataError, is_built_in, load_data
from nas.data.synthetic import class_names, generate


def test_synthetic_is_deterministic_and_balanced():
    x1, y1 = generate(60, 24, 10, seed=3)
    x2, y2 = generate(60, 24, 10, seed=3)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert x1.dtype == np.uint8 and x1.shape == (60, 24, 24, 3)
    assert np.bincount(y1).tolist() == [6] * 10
    assert not np.array_equal(generate(60, 24, 10, seed=4)[0], x1)
    assert x1.std() > 20  # real structure, not a flat image
    assert len(set(class_names(15))) == 15


def test_load_synthetic_split_and_options():
    data = load_data("synthetic:classes=4,images=200,seed=1", resolution=16, val_fraction=0.25)
    assert data.num_classes == 4 and data.resolution == 16
    assert len(data.x_train) == 150 and len(data.x_val) == 50
    assert data.x_train.shape[1:] == (16, 16, 3)
    with pytest.raises(DataError, match="unknown option"):
        load_data("synthetic:colour=red")
    with pytest.raises(DataError, match="classes"):
        load_data("synthetic:classes=99")


def test_only_synthetic_data_is_built_in():
    assert is_built_in("synthetic") and is_built_in("synthetic:classes=3")
    assert not any(is_built_in(text) for text in ("folder:photos", "cifar10:data", "npz:x.npz", "csv:a.csv",
                                                  "syntheticx", "unknown:thing"))


def test_npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.integers(0, 255, (40, 20, 20), dtype=np.uint8), y=np.arange(40) % 4)
    data = load_data(f"npz:{path}", resolution=16, val_fraction=0.25)
    assert data.x_train.shape == (30, 16, 16, 3) and data.num_classes == 4
    np.savez(path, images=np.zeros((4, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match="needs arrays 'x' and 'y'"):
        load_data(f"npz:{path}")
    with pytest.raises(DataError, match="no such file"):
        load_data(f"npz:{tmp_path / 'none.npz'}")
    text = tmp_path / "notes.npz"
    text.write_text("x,y\n1,2\n")
    with pytest.raises(DataError, match="not an .npz archive") as refused:
        load_data(f"npz:{text}")
    assert "allow_pickle" not in str(refused.value)  # never advice to unpickle a file of unknown origin
    np.savez(path, x=np.array([object()] * 4, dtype=object), y=np.arange(4))
    with pytest.raises(DataError, match="array of Python objects, which is not loaded") as refused:
        load_data(f"npz:{path}")
    assert "allow_pickle" not in str(refused.value)


def _cifar_batch(path, n, key, classes, seed):
    rng = np.random.default_rng(seed)
    batch = {b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), key: list(rng.integers(0, classes, n))}
    with open(path, "wb") as handle:
        pickle.dump(batch, handle)


def test_a_crafted_cifar_batch_runs_no_code(tmp_path):
    c10 = tmp_path / "cifar"
    c10.mkdir()
    marker = tmp_path / "marker"
    with open(c10 / "data_batch_1", "wb") as handle:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"x": WritesAMarker(marker)},
                    handle)
    with pytest.raises(DataError, match=r"data_batch_1 .*builtins\.exec, which a CIFAR batch never holds"):
        load_data(f"cifar10:{c10}")
    assert not marker.exists()


def test_cifar10_and_cifar100(tmp_path):
    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    for i in range(1, 6):
        _cifar_batch(c10 / f"data_batch_{i}", 8, b"labels", 10, i)
    data = load_data(f"cifar10:{c10}", resolution=32, val_fraction=0.25)
    assert len(data.x_train) + len(data.x_val) == 40 and data.num_classes == 10
    # the CIFAR layout: rows of 1024 red, then green, then blue values
    raw = pickle.load(open(c10 / "data_batch_1", "rb"), encoding="bytes")[b"data"][0]
    images = np.concatenate([data.x_train, data.x_val])
    assert any(np.array_equal(im[..., 0].reshape(-1), raw[:1024]) for im in images)
    c100 = tmp_path / "cifar-100-python"
    c100.mkdir()
    _cifar_batch(c100 / "train", 20, b"fine_labels", 100, 0)
    assert load_data(f"cifar100:{c100}", resolution=16).num_classes == 100
    with pytest.raises(DataError, match="no such directory"):
        load_data(f"cifar10:{tmp_path / 'missing'}")
    with pytest.raises(DataError, match="no CIFAR training batches"):
        load_data(f"cifar100:{c10}")


def test_folder_is_decoded_once_and_cached(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "eel"]):
        (root / name).mkdir(parents=True)
        for i in range(5):
            size = (30 + 4 * i, 20 + 2 * c)
            Image.fromarray(rng.integers(0, 255, size[::-1] + (3,), dtype=np.uint8)).save(root / name / f"{i}.png")
    data = load_data(f"folder:{root}", resolution=16, val_fraction=0.2)
    assert data.num_classes == 3 and data.x_train.shape[1:] == (16, 16, 3)
    caches = list((tmp_path / "cache").glob("folder-*/x.npy"))
    assert len(caches) == 1
    stamp = os.stat(caches[0]).st_mtime_ns

    import PIL.Image

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(PIL.Image, "open", no_decoding)
    again = load_data(f"folder:{root}", resolution=16, val_fraction=0.2)
    assert np.array_equal(again.x_train, data.x_train) and os.stat(caches[0]).st_mtime_ns == stamp
    with pytest.raises(DataError, match="no such directory"):
        load_data(f"folder:{tmp_path / 'nowhere'}")


def _image_folder(root, counts, seed=0):
    """``root/<class>/<i>.png`` with ``counts[class]`` small random images each."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 255, (12, 14, 3), dtype=np.uint8)).save(root / name / f"{i}.png")


def test_a_train_val_test_folder_trains_on_train_holds_out_val_and_never_reads_test(tmp_path, monkeypatch):
    """The layout of ../shared/data/clothing10 (and torchvision's ImageFolder): its sub-folders are splits, not
    three classes named test, train and val."""
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "photos"
    _image_folder(root / "train", {"hat": 7, "shoe": 5, "skirt": 3})
    _image_folder(root / "val", {"hat": 2, "skirt": 4})  # a class may be missing from val
    (root / "test" / "hat").mkdir(parents=True)
    (root / "test" / "hat" / "0.png").write_bytes(b"not an image: decoding it fails the load")
    data = load_data(f"folder:{root}", resolution=16, val_fraction=0.2)
    assert data.num_classes == 3 and (len(data.y_train), len(data.y_val)) == (15, 6)  # val as given, not split
    assert sorted(np.bincount(data.y_train).tolist()) == [3, 5, 7] and np.bincount(data.y_val).tolist() == [2, 0, 4]
    assert data.x_val.shape == (6, 16, 16, 3)
    no_val = tmp_path / "no-val"
    _image_folder(no_val / "train", {"hat": 10, "shoe": 10})
    split_only = load_data(f"folder:{no_val}", resolution=16, val_fraction=0.2)
    assert (len(split_only.y_train), len(split_only.y_val)) == (16, 4)  # train/ split at random instead
    _image_folder(root / "val", {"scarf": 1})  # a held-out class the training split does not have
    with pytest.raises(DataError, match="class 'scarf' is not among the training classes"):
        load_data(f"folder:{root}", resolution=16)


@pytest.mark.parametrize("text", ["imagenet", "npz:", "cifar10", "folder:"])
def test_bad_data_strings(text):
    with pytest.raises(DataError, match=f"--data '{text}': expected synthetic, npz:PATH, cifar10:DIR"):
        load_data(text)


def test_a_data_set_of_one_class_is_refused():
    import numpy as np

    from nas.data.datasets import DataError, split

    x, y = np.zeros((20, 8, 8, 3), np.uint8), np.full(20, 3)
    with pytest.raises(DataError, match="every training image has label 3"):
        split(x, y, 0.2, 0)


def _data(y_train, y_val, classes, name="d"):
    from nas.data.datasets import ImageSplits

    image = np.zeros((1, 8, 8, 3), np.uint8)
    return ImageSplits(name, np.repeat(image, len(y_train), 0), np.asarray(y_train), np.repeat(image, len(y_val), 0),
                     np.asarray(y_val), classes)


def test_a_sound_data_set_draws_no_warning():
    from nas.data.datasets import data_warnings

    data = load_data("synthetic:classes=4,images=1000", resolution=16)
    assert len(data.y_val) == 200 and data_warnings(data, 64) == []


def test_data_that_judges_architectures_poorly_is_warned_about():
    from nas.data.datasets import data_warnings

    small = data_warnings(_data(np.arange(400) % 4, np.arange(40) % 4, 4), 64)
    assert small == ["warning: d: the held-out split has 40 images, so an accuracy moves in steps of 2.5%: "
                     "candidates closer than that cannot be told apart (use at least 200)"]
    # npz labels 0, 2 and 5: classes 1, 3 and 4 have no image at all; the network cannot learn them
    gaps = data_warnings(_data(np.tile([0, 2, 5], 200),
                               np.tile([0, 2, 5], 100), 6), 64)
    assert gaps == ["warning: d: 3 of 6 classes have no training image (labels 1, 3, 4); a network cannot learn "
                    "them"]
    skewed = data_warnings(_data(np.arange(1000) % 10, np.r_[np.zeros(180, int), np.arange(120) % 10], 10), 64)
    assert len(skewed) == 1 and "class 0 makes up 64% of the held-out split" in skewed[0]
    assert "scores 0.640" in skewed[0]
    # two classes 70/30 is no alarm; 80/20 is
    assert data_warnings(_data(np.arange(600) % 2, np.r_[np.zeros(210, int), np.ones(90, int)], 2), 64) == []
    assert "class 1 makes up 80%" in data_warnings(
        _data(np.arange(600) % 2, np.r_[np.zeros(60, int), np.ones(240, int)], 2), 64)[0]
    batch = data_warnings(_data(np.arange(50) % 2, np.arange(300) % 2, 2), 64)
    assert batch == ["warning: --batch-size 64 is more than the 50 training images; batches hold 50"]


def test_data_too_large_for_memory_is_refused_before_it_is_made():
    with pytest.raises(DataError, match=r"10000000 images at 224px take 1402 GiB in memory \(at most 16 GiB\)"):
        load_data("synthetic:images=10000000", resolution=224)


def test_labels_beyond_any_classifier_are_refused(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((4, 8, 8, 3), np.uint8), y=np.array([0, 1, 2, 10 ** 9]))
    with pytest.raises(DataError, match="labels go up to 1,000,000,000; at most 100,000 classes"):
        load_data(f"npz:{path}")


def test_the_commands_say_the_data_warnings_on_stderr(capsys):
    from nas.api.data import load_proxy_data as _proxy_data
    from nas.training.proxy_settings import ProxySettings

    from nas.console import console_output

    settings = ProxySettings(data="synthetic:classes=3,images=90", resolution=16, batch_size=16)
    data = _proxy_data(settings)
    assert len(data.y_val) == 18 and capsys.readouterr() == ("", "")  # a library call: said to the logger only
    with console_output():  # the commands' output
        _proxy_data(settings)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        "warning: synthetic:classes=3,images=90,seed=0: the held-out split has 18 images, so an accuracy moves "
        "in steps of 5.6%: candidates closer than that cannot be told apart (use at least 200)\n")


def test_the_test_split_is_read_by_load_test_data_alone(tmp_path):
    """CIFAR's test_batch, a test/ folder and x_test/y_test: read for nas-train by load_test_data; load_data, which
    every search reads, never opens them (a broken test_batch does not stop it)."""
    from nas.data.datasets import load_test_data

    c10 = tmp_path / "cifar"
    c10.mkdir()
    _cifar_batch(c10 / "data_batch_1", 40, b"labels", 10, 0)
    (c10 / "test_batch").write_bytes(b"broken: reading it would fail")
    data = load_data(f"cifar10:{c10}", resolution=32)
    assert len(data.y_train) + len(data.y_val) == 40
    with pytest.raises(DataError, match="cannot read test_batch"):
        load_test_data(f"cifar10:{c10}", 32, data)
    _cifar_batch(c10 / "test_batch", 12, b"labels", 10, 5)
    x, y, notes = load_test_data(f"cifar10:{c10}", 16, data)
    assert x.shape == (12, 16, 16, 3) and len(y) == 12
    (c10 / "test_batch").unlink()
    assert load_test_data(f"cifar10:{c10}", 32, data) is None
    assert load_test_data("synthetic:classes=3,images=60", 32, load_data("synthetic:classes=3,images=60")) is None

    path = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (30, 8, 8, 3), dtype=np.uint8)
    np.savez(path, x=images, y=np.arange(30) % 3, x_test=images[:7], y_test=np.array([0, 1, 2, 2, 1, 0, 5]))
    data = load_data(f"npz:{path}", resolution=8)
    x, y, notes = load_test_data(f"npz:{path}", 8, data)
    assert len(y) == 6 and any("labels 5, past the 3 classes" in n and "left out" in n for n in notes)


def test_a_test_split_unlike_the_training_images_is_warned_about_saying_what_was_done(tmp_path):
    from nas.data.datasets import load_test_data

    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.integers(0, 255, (30, 16, 16, 3), dtype=np.uint8), y=np.arange(30) % 3,
             x_test=rng.integers(0, 255, (7, 8, 8), dtype=np.uint8), y_test=np.arange(7) % 3)
    data = load_data(f"npz:{path}", resolution=16)
    x, y, notes = load_test_data(f"npz:{path}", 16, data)
    assert x.shape == (7, 16, 16, 3) and len(notes) == 1
    assert ("the test images are 8x8 single-channel where the training images are 16x16 colour: resized to 16 px "
            "and made RGB by repeating the channel") in notes[0]
    # the same size and channels but pixels scaled to 0..1: used as they are, with a line saying so
    np.savez(path, x=rng.integers(0, 255, (30, 16, 16, 3), dtype=np.uint8), y=np.arange(30) % 3,
             x_test=rng.integers(0, 2, (7, 16, 16, 3), dtype=np.uint8), y_test=np.arange(7) % 3)
    data = load_data(f"npz:{path}", resolution=16)
    _, _, notes = load_test_data(f"npz:{path}", 16, data)
    assert len(notes) == 1 and "the test pixels span 0..1 where the training pixels span 0..25" in notes[0]
    # a test split like the training images: not a word
    np.savez(path, x=rng.integers(0, 255, (30, 16, 16, 3), dtype=np.uint8), y=np.arange(30) % 3,
             x_test=rng.integers(0, 255, (7, 16, 16, 3), dtype=np.uint8), y_test=np.arange(7) % 3)
    assert load_test_data(f"npz:{path}", 16, load_data(f"npz:{path}", resolution=16))[2] == []


def test_a_test_folder_is_labelled_by_the_training_classes(tmp_path):
    from nas.data.datasets import load_test_data

    root = tmp_path / "photos"
    _image_folder(root / "train", {"hat": 6, "shoe": 6, "skirt": 6})
    _image_folder(root / "test", {"shoe": 2, "skirt": 3, "scarf": 4})  # scarf: no output for it
    data = load_data(f"folder:{root}", resolution=16)
    x, y, notes = load_test_data(f"folder:{root}", 16, data)
    assert sorted(y.tolist()) == [1, 1, 2, 2, 2] and x.shape[1:] == (16, 16, 3)
    assert any("classes scarf are not in train/" in n for n in notes)


def test_broken_and_oversized_images_are_skipped_with_one_warning_each(tmp_path, monkeypatch):
    from PIL import Image

    from nas.data.datasets import data_warnings

    root = tmp_path / "photos"
    _image_folder(root, {"hat": 6, "shoe": 6})
    (root / "hat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)  # 12x14 images: 168 pixels, over 2x the limit
    Image.fromarray(np.zeros((12, 14, 3), np.uint8)).save(root / "shoe" / "huge.png")
    with pytest.raises(DataError, match="none of its 14 images could be read"):
        load_data(f"folder:{root}", resolution=16)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10 ** 8)
    (root / "shoe" / "huge.png").unlink()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(root / "shoe" / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 1,600 pixels: over 2x the limit, refused by Pillow
    data = load_data(f"folder:{root}", resolution=16)
    assert len(data.y_train) + len(data.y_val) == 12 and data.skipped == 2
    notes = [n for n in data_warnings(data) if "skipped" in n]
    assert len(notes) == 2 and any("hat/broken.png" in n for n in notes)
    assert any("shoe/huge.png (DecompressionBombError" in n for n in notes)
    assert "2 unreadable images skipped" in data.describe()
    again = load_data(f"folder:{root}", resolution=16)  # from the decoded cache: the warnings too
    assert again.skipped == 2 and again.notes == data.notes


def test_a_csv_of_paths_and_labels_is_a_data_source_with_its_own_splits(tmp_path):
    """csv:FILE, the format added as one loader and one row of SOURCES: labels by name, val rows held out as
    given, test rows read only by load_test_data, a missing image skipped with one warning."""
    from PIL import Image

    from nas.data.datasets import SOURCES, data_formats, load_test_data

    rng = np.random.default_rng(0)
    lines = ["path,label,split"]
    for i in range(36):
        label, split = ["cat", "dog", "eel"][i % 3], "val" if i >= 24 and i < 30 else "test" if i >= 30 else ""
        (tmp_path / "img").mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "img" / f"{i}.png")
        lines.append(f"img/{i}.png,{label},{split}")
    lines.append("img/missing.png,dog,")
    (tmp_path / "photos.csv").write_text("\n".join(lines) + "\n")
    data = load_data(f"csv:{tmp_path / 'photos.csv'}", resolution=16)
    assert data.num_classes == 3 and len(data.y_train) == 24 and len(data.y_val) == 6
    assert data.y_train.tolist() == [i % 3 for i in range(24)]  # cat, dog, eel: sorted names
    assert len(data.notes) == 1 and "skipped img/missing.png (FileNotFoundError" in data.notes[0]
    x, y, _ = load_test_data(f"csv:{tmp_path / 'photos.csv'}", 16, data)
    assert x.shape == (6, 16, 16, 3) and y.tolist() == [i % 3 for i in range(30, 36)]
    assert "csv:FILE" in data_formats() and list(SOURCES)[-1] == "csv"
    (tmp_path / "bad.csv").write_text("file,class\nimg/0.png,cat\n")
    with pytest.raises(DataError, match="needs columns path and label"):
        load_data(f"csv:{tmp_path / 'bad.csv'}", resolution=16)
    with pytest.raises(DataError, match="expected synthetic, npz:PATH, cifar10:DIR, cifar100:DIR, folder:DIR, "
                                        "csv:FILE"):
        load_data("tfrecord:/data", resolution=16)


def test_the_cache_folder_follows_nas_cache_dir_then_xdg_cache_home(monkeypatch, tmp_path):
    from pathlib import Path

    from nas.data.decode_cache import cache_root

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("NAS_CACHE_DIR")
    assert cache_root() == tmp_path / "xdg" / "nas-toolkit"
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # set but empty: as if not set (the XDG specification)
    assert cache_root() == Path.home() / ".cache" / "nas-toolkit"
