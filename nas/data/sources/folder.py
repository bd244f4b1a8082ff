"""``folder:DIR``: one sub-folder of images per class, decoded with Pillow, resized (shorter side, then a centre
crop) and kept in the decoded-image cache. A folder split as ``train/``, ``val/`` and ``test/`` (torchvision's
ImageFolder layout, each with the class sub-folders) trains on ``train/`` and holds out ``val/`` as given
(``train/`` split at random without a ``val/``); ``test/`` is nas-train's test split."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.data.decode_cache import decode_files
from nas.data.images import IMAGE_SUFFIXES, DataError, median_short_side
from nas.data.sources.base import Source, TestSplit, sample
from nas.data.splits import ImageSplits, held_out, split


class FolderSource(Source):
    prefix, argument = "folder", "DIR"

    def load(self, text: str, rest: str, resolution: int, val_fraction: float, seed: int) -> ImageSplits:
        if split_folders(rest):
            return _load_split_folder(text, rest, resolution, val_fraction, seed)
        x, y, names, notes = _load_folder(rest, resolution)
        return held_out(text, x, y, len(names), notes, resolution, val_fraction, seed)

    def load_test(self, rest: str, resolution: int, train: ImageSplits) -> TestSplit | None:
        if "test" not in (split_folders(rest) or {}):
            return None
        return _load_test_folder(rest, resolution, train)

    def stored_resolution(self, rest: str) -> int | None:
        root = (split_folders(rest) or {}).get("train", Path(rest))
        files = [f for f in sorted(root.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        return median_short_side(sample(files))


SPLIT_FOLDERS = ("train", "val", "test")  # a folder split this way: its sub-folders are splits, not classes


def _sub_folders(root: Path) -> list[str]:
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def split_folders(directory: str) -> dict[str, Path] | None:
    """The splits of a ``train/``-``val/``-``test/`` folder (those present, ``train`` always), or None when the
    folder's sub-folders are its classes."""
    root = Path(directory)
    names = _sub_folders(root) if root.is_dir() else []
    if "train" not in names or not set(names) <= set(SPLIT_FOLDERS):
        return None
    return {name: root / name for name in names}


def _load_folder(directory: str | Path, resolution: int, classes: list[str] | None = None,
                 ignore_unknown: bool = False) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """The images of a folder of class sub-folders, labelled by ``classes`` (default: its own sub-folders,
    sorted), their names, and one warning per image that could not be read (broken, over the decoder's pixel
    limit), which is left out. A sub-folder not in ``classes`` is an error, or skipped with ``ignore_unknown``."""
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"folder:{directory}: no such directory")
    found = _sub_folders(root)
    if classes is None:
        classes = found
    elif set(found) - set(classes) and not ignore_unknown:
        raise DataError(f"folder:{directory}: class {sorted(set(found) - set(classes))[0]!r} is not among the "
                        f"training classes ({', '.join(classes)})")
    if len(classes) < 2:
        raise DataError(f"folder:{directory}: needs one sub-folder per class (found {len(classes)})")
    files = [(label, f) for label, name in enumerate(classes) if (root / name).is_dir()
             for f in sorted((root / name).rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"folder:{directory}: no images found")
    x, y, skipped = decode_files(files, resolution, f"folder:{directory}", root)
    return x, y, classes, skipped


def _load_split_folder(text: str, directory: str, resolution: int, val_fraction: float, seed: int) -> ImageSplits:
    """A ``train/``-``val/``(-``test/``) folder: ``train/`` to train, ``val/`` held out as given (``train/`` split
    at random when there is none); ``test/`` is not read."""
    splits = split_folders(directory)
    x, y, classes, notes = _load_folder(splits["train"], resolution)
    if "val" not in splits:
        return ImageSplits(text, *split(x, y, val_fraction, seed), len(classes), notes)
    x_val, y_val, _, val_notes = _load_folder(splits["val"], resolution, classes)
    notes = notes + val_notes
    if len(np.unique(y)) < 2:
        raise DataError(f"folder:{directory}/train: every training image has label {int(y[0])}; a classifier "
                        f"needs at least 2 classes")
    return ImageSplits(text, x, y, x_val, y_val, len(classes), notes)


def _load_test_folder(directory: str, resolution: int,
                      train: ImageSplits) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The ``test/`` folder of a split folder, labelled by ``train/``'s classes (an unknown class is left out)."""
    splits = split_folders(directory)
    classes = _sub_folders(splits["train"])
    found = _sub_folders(splits["test"])
    unknown = sorted(set(found) - set(classes))
    notes = []
    if unknown:
        notes.append(f"warning: folder:{directory}/test: classes {', '.join(unknown)} are not in train/: their "
                     f"images are left out")
    if not set(found) & set(classes):
        return np.empty((0, resolution, resolution, 3), np.uint8), np.empty(0, np.int64), notes
    x, y, _, skipped = _load_folder(splits["test"], resolution, classes, ignore_unknown=True)
    return x, y, notes + skipped
