"""The ``--data`` formats, one class each (synthetic, npz, CIFAR, image folders, CSV), the registry every help
text and error lists them from, and the frozen reference to one data set a run carries (:class:`DataRef`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.data.images import DataError, check_size, resize_images
from nas.data.sources.base import Source, TestSplit
from nas.data.sources.cifar import CifarSource
from nas.data.sources.csv_table import CsvSource
from nas.data.sources.folder import FolderSource
from nas.data.sources.npz import NpzSource
from nas.data.sources.synthetic import SyntheticSource
from nas.data.splits import ImageSplits, class_list
from search_spaces.spec import MIN_RESOLUTION

SOURCES: dict[str, Source] = {s.prefix: s for s in (SyntheticSource(), NpzSource(), CifarSource("cifar10"),
                                                    CifarSource("cifar100"), FolderSource(), CsvSource())}


def data_formats() -> str:
    """The formats --data takes, as help texts and errors list them."""
    return ", ".join(source.usage for source in SOURCES.values())


def parse_data(text: str) -> tuple[Source, str]:
    """The format a ``--data`` string names and what follows its colon; one-line DataError otherwise."""
    prefix, _, rest = text.partition(":")
    source = SOURCES.get(prefix)
    if source is None or (source.argument and not rest):
        raise DataError(f"--data {text!r}: expected {data_formats()}")
    return source, rest


def is_built_in(text: str) -> bool:
    """Whether a ``--data`` string names data the toolkit makes itself (not a user's images)."""
    source = SOURCES.get(text.partition(":")[0])
    return source is not None and source.built_in


def stored_resolution(text: str) -> int | None:
    """The size the images a ``--data`` string names are stored at (the shorter side; for files, the median of a
    sample of headers), or None when it has none (synthetic data, made at any size) or the data cannot be read
    (its loader then says why)."""
    source = SOURCES.get(text.partition(":")[0])
    try:
        return source.stored_resolution(text.partition(":")[2]) if source else None
    except (OSError, ValueError, KeyError, DataError):
        return None


def load_data(text: str = "synthetic", resolution: int = 32, val_fraction: float = 0.2,
              seed: int = 0) -> ImageSplits:
    """Load the data set a ``--data`` string names (a format of SOURCES), resized to ``resolution``, split
    train/val."""
    if not isinstance(resolution, int) or resolution < MIN_RESOLUTION:
        raise DataError(f"proxy resolution {resolution!r} is too small (at least {MIN_RESOLUTION})")
    if not 0 < val_fraction < 1:
        raise DataError(f"validation fraction {val_fraction!r} must be between 0 and 1")
    source, rest = parse_data(text)
    return source.load(text, rest, resolution, val_fraction, seed)


def load_test_data(text: str, resolution: int, train: ImageSplits) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """The test split of the data set ``text`` names, at ``resolution``, labelled as ``train`` is; None when it
    has none. Called by nas-train alone: a search never reads a test split.

    Returns ``(x, y, warnings)``. Test images of a class the training split lacks are warned about: those of a
    class the network has no output for (a ``test/`` sub-folder that ``train/`` lacks, a label past the class
    count) are left out; those of a class with an output but no training image are kept (and cannot be
    learnt).
    """
    source, rest = parse_data(text)
    found = source.load_test(rest, resolution, train)
    if found is None or not len(found[0]):
        return None
    x, y, notes = found
    beyond = y >= train.num_classes
    if beyond.any():
        notes.append(f"warning: {text}: {int(beyond.sum())} test images have labels {class_list(np.unique(y[beyond]))}"
                     f", past the {train.num_classes} classes of the training split: left out")
        x, y = x[~beyond], y[~beyond]
    untrained = np.setdiff1d(np.unique(y), np.unique(train.y_train))
    if len(untrained):
        notes.append(f"warning: {text}: test labels {class_list(untrained)} have no training image "
                     f"({int(np.isin(y, untrained).sum())} test images); the network cannot learn them")
    if not len(x):
        return None
    check_size(len(x), resolution, f"{text} (test)")
    return resize_images(np.ascontiguousarray(x), resolution), y, notes


@dataclass(frozen=True)
class DataRef:
    """One data set as a run uses it: the ``--data`` string, the size its images are resized to, the share held
    out and the seed of that split. Two runs with equal references see the same training and held-out images."""

    text: str = "synthetic"
    resolution: int = 32
    val_fraction: float = 0.2
    seed: int = 0

    def load(self) -> ImageSplits:
        """The training and held-out images."""
        return load_data(self.text, self.resolution, self.val_fraction, self.seed)

    def load_test(self, train: ImageSplits) -> TestSplit | None:
        """The test split, labelled as ``train`` is (nas-train alone reads it); None when there is none."""
        return load_test_data(self.text, self.resolution, train)
