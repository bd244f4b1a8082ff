"""A data set's splits: training, held-out and (nas-train only) test images at one resolution, the seeded
split that holds images out, and the warnings that say when a data set is a poor judge of architectures."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from nas.data.images import DataError, check_size, resize_images


@dataclass
class ImageSplits:
    """A data set's training, held-out validation and (for nas-train only) test images at one resolution, with
    its notes: what a search's trials and nas-train's workers receive whole through Ray's object store."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    notes: list[str] = field(default_factory=list)  # one warning per image that could not be read, left out
    x_test: np.ndarray | None = None  # the test split: only nas-train loads it (load_test_data)
    y_test: np.ndarray | None = None

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The test images and labels, or None without a test split."""
        return None if self.x_test is None else (self.x_test, self.y_test)

    def with_test(self, x_test: np.ndarray, y_test: np.ndarray) -> "ImageSplits":
        """The same splits with a test split added."""
        return replace(self, x_test=x_test, y_test=y_test)

    @property
    def skipped(self) -> int:
        """Images that could not be read and were left out."""
        return len(self.notes)

    @property
    def resolution(self) -> int:
        return int(self.x_train.shape[1])

    def describe(self) -> str:
        skipped = f", {self.skipped} unreadable image{'s' if self.skipped != 1 else ''} skipped" if self.skipped else ""
        return (f"{self.name}: {len(self.x_train)} train / {len(self.x_val)} val images, "
                f"{self.num_classes} classes, {self.resolution}px{skipped}")


def split(x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """A seeded random split; the validation part is held out from the training data."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(len(x) * val_fraction)))
    if n_val >= len(x):
        raise DataError(f"data: {len(x)} images are too few to hold out a validation split")
    val, train = order[:n_val], order[n_val:]
    if len(np.unique(y[train])) < 2:
        raise DataError(f"data: every training image has label {int(y[train][0])}; a classifier needs at least "
                        f"2 classes")
    return x[train], y[train], x[val], y[val]


MIN_VAL_IMAGES = 200  # below this a held-out accuracy moves in steps of 0.5% or more: candidates blur together


def class_list(classes: np.ndarray) -> str:
    shown = ", ".join(str(int(c)) for c in classes[:8])
    return shown + (f" and {len(classes) - 8} more" if len(classes) > 8 else "")


def data_warnings(data: ImageSplits, batch_size: int | None = None) -> list[str]:
    """What makes a data set a poor judge of architectures, as ``warning:`` lines (empty when nothing does):
    a small held-out split, classes that no training image has, a held-out split that one class dominates,
    a batch larger than the training split."""
    out = list(data.notes)
    n_val, classes = len(data.y_val), data.num_classes
    if n_val < MIN_VAL_IMAGES:
        out.append(f"warning: {data.name}: the held-out split has {n_val} images, so an accuracy moves in steps of "
                   f"{100 / n_val:.2g}%: candidates closer than that cannot be told apart (use at least "
                   f"{MIN_VAL_IMAGES})")
    untrained = np.setdiff1d(np.arange(classes), np.unique(data.y_train))
    if len(untrained):
        out.append(f"warning: {data.name}: {len(untrained)} of {classes} classes have no training image "
                   f"(labels {class_list(untrained)}); a network cannot learn them")
    if n_val and classes > 1:
        counts = np.bincount(data.y_val, minlength=classes)
        share = counts.max() / n_val
        if share > 0.5 and share >= 1.5 / classes:
            out.append(f"warning: {data.name}: class {int(counts.argmax())} makes up {share:.0%} of the held-out "
                       f"split, so always answering it scores {share:.3f}: accuracy then says little about "
                       f"an architecture")
    if batch_size and batch_size > len(data.y_train):
        out.append(f"warning: --batch-size {batch_size} is more than the {len(data.y_train)} training images; "
                   f"batches hold {len(data.y_train)}")
    return out


def held_out(text: str, x: np.ndarray, y: np.ndarray, classes: int, notes: list[str], resolution: int,
              val_fraction: float, seed: int, name: str | None = None) -> ImageSplits:
    """Images of one set, resized and split at random into training and held-out images."""
    if len(x) < 2:
        raise DataError(f"--data {text!r}: needs at least 2 images")
    check_size(len(x), resolution, f"--data {text!r}")
    x = resize_images(np.ascontiguousarray(x), resolution)
    return ImageSplits(name or text, *split(x, y, val_fraction, seed), classes, notes)
