"""``npz:PATH``: a NumPy ``.npz`` with ``x`` (N, H, W, 3) or (N, H, W) uint8 images and ``y`` (N,) labels;
``x_test`` and ``y_test``, when present, are its test split."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nas.data.images import DataError, as_rgb, labels_of
from nas.data.sources.base import Source, TestSplit
from nas.data.splits import ImageSplits, held_out


class NpzSource(Source):
    prefix, argument = "npz", "PATH"

    def load(self, text: str, rest: str, resolution: int, val_fraction: float, seed: int) -> ImageSplits:
        x, y, classes = _load_npz(rest)
        return held_out(text, x, y, classes, [], resolution, val_fraction, seed)

    def load_test(self, rest: str, resolution: int, train: ImageSplits) -> TestSplit | None:
        x, y, _ = _load_npz(rest, test=True)
        return x, y, npz_test_notes(rest, resolution, train, x) if len(x) else []

    def stored_resolution(self, rest: str) -> int | None:
        shape = _npz_shape(rest, "x")
        return int(min(shape[1:3])) if len(shape) >= 3 else None


def _load_npz(path: str, test: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """The ``x``/``y`` arrays of an .npz (with ``test``: ``x_test``/``y_test``, empty when it has none)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"npz:{path}: no such file")
    if not zipfile.is_zipfile(file):
        raise DataError(f"npz:{path}: not an .npz archive (numpy.savez writes one, with arrays x and y)")
    try:
        with np.load(file) as archive:
            if "x" not in archive or "y" not in archive:
                raise DataError(f"npz:{path}: needs arrays 'x' and 'y', found {sorted(archive.files)}")
            if test and ("x_test" in archive) != ("y_test" in archive):
                raise DataError(f"npz:{path}: has only one of 'x_test' and 'y_test'; a test split needs both")
            if test and "x_test" not in archive:
                return np.empty((0, 1, 1, 3), np.uint8), np.empty(0, np.int64), 0
            x, y = (archive["x_test"], archive["y_test"]) if test else (archive["x"], archive["y"])
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        if "allow_pickle" in str(exc):  # an object array: loading it would unpickle, which runs code
            raise DataError(f"npz:{path}: x or y is an array of Python objects, which is not loaded (it would be "
                            f"unpickled); save them as numeric arrays") from None
        raise DataError(f"npz:{path}: cannot read ({exc})") from None
    where = f"npz:{path}" + (" (x_test)" if test else "")
    x = as_rgb(x, where)
    y, classes = labels_of(y, len(x), where)
    return x, y, classes


def _npz_shape(path: str, name: str) -> tuple[int, ...]:
    """The shape of array ``name`` of an .npz, read from its header (the array is not loaded)."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as handle:
        version = np.lib.format.read_magic(handle)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return tuple(read(handle)[0])


def npz_test_notes(path: str, resolution: int, train: ImageSplits, x_test: np.ndarray) -> list[str]:
    """One warning per way an .npz's test images differ from its training images (size, channels, value
    range), saying what was done about it; the test accuracy of a split unlike the training data may not mean
    what it seems."""
    train_shape, test_shape = _npz_shape(path, "x"), _npz_shape(path, "x_test")

    def single_channel(shape: tuple[int, ...]) -> bool:
        return len(shape) == 3 or shape[-1] == 1

    def described(shape: tuple[int, ...]) -> str:
        return f"{shape[1]}x{shape[2]} {'single-channel' if single_channel(shape) else 'colour'}"

    notes = []
    done = [f"resized to {resolution} px"] if train_shape[1:3] != test_shape[1:3] else []
    if single_channel(test_shape) != single_channel(train_shape):
        done.append("made RGB by repeating the channel" if single_channel(test_shape)
                    else "kept in colour (the training images were made RGB by repeating their channel)")
    if done:
        notes.append(f"warning: npz:{path}: the test images are {described(test_shape)} where the training "
                     f"images are {described(train_shape)}: {' and '.join(done)}; a test accuracy on images "
                     f"unlike the training ones may not mean what it seems")
    train_top, test_top = int(train.x_train.max(initial=0)), int(x_test.max(initial=0))
    if test_top <= 1 < train_top or train_top <= 1 < test_top:
        notes.append(f"warning: npz:{path}: the test pixels span 0..{test_top} where the training pixels span "
                     f"0..{train_top}: the two splits look scaled differently (used as they are)")
    return notes
