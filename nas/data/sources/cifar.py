"""``cifar10:DIR`` / ``cifar100:DIR``: the standard python-pickle batches (``data_batch_1..5`` or ``train``,
and ``test_batch`` or ``test``) in a local directory, read by an unpickler that refuses anything but arrays.
Nothing is downloaded."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from nas.data.images import DataError, labels_of
from nas.data.sources.base import Source, TestSplit
from nas.data.splits import ImageSplits, held_out


class CifarSource(Source):
    argument = "DIR"

    def __init__(self, kind: str) -> None:
        self.prefix = kind  # cifar10 or cifar100

    def load(self, text: str, rest: str, resolution: int, val_fraction: float, seed: int) -> ImageSplits:
        x, y, classes = _load_cifar(self.prefix, rest)
        return held_out(text, x, y, classes, [], resolution, val_fraction, seed)

    def load_test(self, rest: str, resolution: int, train: ImageSplits) -> TestSplit | None:
        x, y, _ = _load_cifar(self.prefix, rest, test=True)
        return x, y, []

    def stored_resolution(self, rest: str) -> int | None:
        return 32


# what a CIFAR batch's pickle may name: numpy's array and scalar reconstruction (numpy 1 and 2 module names)
# and the bytes codec protocol 2 uses; nothing that runs code
CIFAR_GLOBALS = {(module, name) for prefix in ("numpy.core", "numpy._core")
                 for module, name in ((f"{prefix}.multiarray", "_reconstruct"), (f"{prefix}.multiarray", "scalar"),
                                      (f"{prefix}.numeric", "_frombuffer"))}
CIFAR_GLOBALS |= {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class CifarUnpickler(pickle.Unpickler):
    """Reads a CIFAR batch and nothing else: a pickle that names any other callable is refused, so a crafted
    ``data_batch_1`` cannot run code when a command loads it."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR batch never holds: refused "
                                         f"unread")
        return super().find_class(module, name)


def _cifar_files(kind: str, root: Path, test: bool) -> list[Path]:
    if kind == "cifar10":
        names = ["test_batch"] if test else [f"data_batch_{i}" for i in range(1, 6)]
    else:
        names = ["test"] if test else ["train"]
    return [root / name for name in names if (root / name).is_file()]


def _load_cifar(kind: str, directory: str, test: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """CIFAR's training batches (or, with ``test``, its test batch; empty arrays when it has none)."""
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"{kind}:{directory}: no such directory")
    key, classes = (b"labels", 10) if kind == "cifar10" else (b"fine_labels", 100)
    files = _cifar_files(kind, root, test)
    if not files and test:
        return np.empty((0, 32, 32, 3), np.uint8), np.empty(0, np.int64), classes
    if not files:
        raise DataError(f"{kind}:{directory}: no CIFAR training batches "
                        f"({'data_batch_1..5' if kind == 'cifar10' else 'train'}) in this directory")
    xs, ys = [], []
    for file in files:
        try:
            with open(file, "rb") as handle:
                batch = CifarUnpickler(handle, encoding="bytes").load()
            xs.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(np.asarray(batch[key]))
        except Exception as exc:  # noqa: BLE001 - any unreadable batch is a data error
            raise DataError(f"{kind}:{directory}: cannot read {file.name} ({type(exc).__name__}: {exc})") from None
    x = np.concatenate(xs)
    y, _ = labels_of(np.concatenate(ys), len(x), f"{kind}:{directory}")
    return x, y, classes
