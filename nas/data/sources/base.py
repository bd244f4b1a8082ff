"""What a ``--data`` format is: a class with how its training data loads (resized and split into training and
held-out images), how its test split loads, and the size its images are stored at."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.data.splits import ImageSplits

TestSplit = tuple[np.ndarray, np.ndarray, list[str]]  # images, labels, warnings
STORED_SIZE_SAMPLE = 25  # image files whose headers are read to tell the size a folder's images are stored at


def sample(files: list[Path]) -> list[Path]:
    """Up to STORED_SIZE_SAMPLE files spread over ``files`` (whose headers tell the size they are stored at)."""
    return files[:: max(1, len(files) // STORED_SIZE_SAMPLE)][:STORED_SIZE_SAMPLE]


class Source:
    """One ``--data`` format, ``prefix:ARGUMENT``. What each one is: nas/data/datasets.py's docstring and
    docs/data.md."""

    prefix = ""
    argument = ""  # what follows the colon: PATH, DIR, FILE, or "" (options only)
    built_in = False  # made by the toolkit (no user's images): a search then trains no finalists

    @property
    def usage(self) -> str:
        return f"{self.prefix}:{self.argument}" if self.argument else self.prefix

    def load(self, text: str, rest: str, resolution: int, val_fraction: float, seed: int) -> ImageSplits:
        """The training and held-out images of ``text`` (``rest``: what follows its colon) at ``resolution``."""
        raise NotImplementedError

    def load_test(self, rest: str, resolution: int, train: ImageSplits) -> TestSplit | None:
        """The test split, labelled as ``train`` is (None: it has none). Read by nas-train alone."""
        return None

    def stored_resolution(self, rest: str) -> int | None:
        """The shorter side its images are stored at (None: none, as synthetic data made at any size)."""
        return None
