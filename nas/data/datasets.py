"""Proxy datasets: uint8 NHWC arrays plus int64 labels, resized once to the proxy resolution, with a
held-out validation split taken from the training data (as MnasNet held out 50K ImageNet training images).

The ``--data`` string selects one:

- ``synthetic`` (default), or ``synthetic:classes=10,images=6000,seed=0``: procedural shapes and textures
  on cluttered backgrounds (nas/data/synthetic.py), generated deterministically; 2 to 15 classes.
- ``npz:PATH``: a NumPy ``.npz`` with ``x`` (N, H, W, 3) or (N, H, W) uint8 images and ``y`` (N,) labels.
- ``cifar10:DIR`` / ``cifar100:DIR``: the standard python-pickle batches (``data_batch_1..5`` or ``train``)
  in a local directory. Nothing is downloaded.
- ``folder:DIR``: one sub-folder of images per class, decoded with Pillow, resized (shorter side, then a
  centre crop) and cached once as ``.npy`` under ``$NAS_CACHE_DIR`` (default ``~/.cache/nas-toolkit``);
  the cache is keyed by the folder's file list, sizes and times, so a changed folder is read again. A
  folder split as ``train/``, ``val/`` and ``test/`` (torchvision's ImageFolder layout, each with the class
  sub-folders) trains on ``train/`` and holds out ``val/`` as given (``train/`` split at random without a
  ``val/``).

- ``csv:FILE``: a CSV of image paths and labels (columns ``path``, ``label``, optionally ``split``).

Each format is one loader and one row of ``SOURCES`` (the help texts and errors list them from there).
A test split (``test_batch`` / ``test`` beside CIFAR's training batches, a ``test/`` folder, ``x_test`` and
``y_test`` in an ``.npz``, rows marked ``test`` in a CSV) is read only by :func:`load_test_data`, which
nas-train alone calls: a search never sees it.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import pickle
import warnings
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from nas.data.synthetic import MAX_CLASSES as SYNTHETIC_CLASSES, generate
from nas.errors import UserInputError
from nas.files import atomic_path
from search_spaces.spec import MAX_CLASSES, MIN_RESOLUTION

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class DataError(UserInputError):
    """A data string or data set that cannot be used (a user error: one line, exit 2)."""


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


def _options(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise DataError(f"--data: option {item!r} is not key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def resize_images(images: np.ndarray, resolution: int) -> np.ndarray:
    """Resize uint8 NHWC images to ``resolution`` (square; antialiased when shrinking)."""
    if images.shape[1] == resolution and images.shape[2] == resolution:
        return images
    import torch
    import torch.nn.functional as F

    out = np.empty((len(images), resolution, resolution, 3), np.uint8)
    for start in range(0, len(images), 1024):
        batch = torch.from_numpy(images[start:start + 1024]).permute(0, 3, 1, 2).float()
        batch = F.interpolate(batch, size=(resolution, resolution), mode="bilinear", antialias=True,
                              align_corners=False)
        out[start:start + 1024] = batch.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out


def _as_rgb(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        x = np.repeat(x[..., None], 3, axis=-1)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{where}: images must be (N, H, W, 3) or (N, H, W), got shape {x.shape}")
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.dtype != np.uint8:
        raise DataError(f"{where}: images must be uint8, got {x.dtype}")
    return x


def _labels(y: np.ndarray, n: int, where: str) -> tuple[np.ndarray, int]:
    y = np.asarray(y).reshape(-1)
    if len(y) != n:
        raise DataError(f"{where}: {n} images but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise DataError(f"{where}: labels must be non-negative integers")
    if len(y) and y.max() >= MAX_CLASSES:
        raise DataError(f"{where}: labels go up to {int(y.max()):,}; at most {MAX_CLASSES:,} classes (labels "
                        f"0..{MAX_CLASSES - 1:,})")
    return y.astype(np.int64), int(y.max()) + 1 if len(y) else 0


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
    x = _as_rgb(x, where)
    y, classes = _labels(y, len(x), where)
    return x, y, classes


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
    y, _ = _labels(np.concatenate(ys), len(x), f"{kind}:{directory}")
    return x, y, classes


def cache_root() -> Path:
    return Path(os.environ.get("NAS_CACHE_DIR", Path.home() / ".cache" / "nas-toolkit"))


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


def _decode(path: Path, resolution: int) -> np.ndarray:
    """One image: RGB, the shorter side resized to ``resolution``, then a centre crop."""
    from PIL import Image

    with Image.open(path) as image, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # PIL's advice on palette transparency: nothing to act on
        image = image.convert("RGB")
        scale = resolution / min(image.size)
        w, h = max(resolution, round(image.width * scale)), max(resolution, round(image.height * scale))
        image = image.resize((w, h), Image.BILINEAR)
        left, top = (w - resolution) // 2, (h - resolution) // 2
        return np.asarray(image.crop((left, top, left + resolution, top + resolution)))


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


def decode_files(files: list[tuple[int, Path]], resolution: int, where: str,
                 root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Labelled image files decoded at ``resolution`` and cached once as ``.npy`` under $NAS_CACHE_DIR (keyed by
    the files, sizes and times, so a changed set is read again); one warning per image that could not be read
    (broken, missing, over the decoder's pixel limit), which is left out."""
    digest = hashlib.sha1(f"{root.resolve()}|{resolution}".encode())
    for label, f in files:
        stat = f.stat() if f.is_file() else None
        name = f.relative_to(root) if f.is_relative_to(root) else f
        digest.update(f"{label}|{name}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}".encode())
    cache = cache_root() / f"{where.split(':')[0]}-{digest.hexdigest()[:16]}"  # folder-..., csv-...
    _check_size(len(files), resolution, where)
    if all((cache / name).is_file() for name in ("x.npy", "y.npy", "skipped.json")):
        return np.load(cache / "x.npy"), np.load(cache / "y.npy"), json.loads((cache / "skipped.json").read_text())
    from PIL import Image

    x = np.empty((len(files), resolution, resolution, 3), np.uint8)
    kept, skipped = [], []
    for label, f in files:
        try:
            x[len(kept)] = _decode(f, resolution)
            kept.append(label)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            name = f.relative_to(root) if f.is_relative_to(root) else f
            skipped.append(f"warning: {where}: skipped {name} "
                           f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else 'unreadable'})")
    if not kept:
        raise DataError(f"{where}: none of its {len(files)} images could be read ({skipped[0]})")
    x, y = x[:len(kept)], np.array(kept, np.int64)
    cache.mkdir(parents=True, exist_ok=True)
    for name, array in (("x", x), ("y", y)):  # atomic: a crash never leaves a half-written cache
        with atomic_path(cache / f"{name}.npy") as tmp:
            np.save(tmp, array)
    with atomic_path(cache / "skipped.json") as tmp:
        tmp.write_text(json.dumps(skipped))
    return x, y, skipped


def _check_size(images: int, resolution: int, where: str) -> None:
    size = images * resolution * resolution * 3
    if size > MAX_DATA_BYTES:
        raise DataError(f"{where}: {images} images at {resolution}px take {size / 2 ** 30:.0f} GiB in memory (at "
                        f"most {MAX_DATA_BYTES // 2 ** 30} GiB); use fewer images or a lower resolution "
                        f"(--proxy-resolution; nas-train: --resolution)")


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
MAX_DATA_BYTES = 16 * 2 ** 30  # the proxy arrays are held in memory (and copied to every trial worker)


def _class_list(classes: np.ndarray) -> str:
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
                   f"(labels {_class_list(untrained)}); a network cannot learn them")
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


def _held_out(text: str, x: np.ndarray, y: np.ndarray, classes: int, notes: list[str], resolution: int,
              val_fraction: float, seed: int, name: str | None = None) -> ImageSplits:
    """Images of one set, resized and split at random into training and held-out images."""
    if len(x) < 2:
        raise DataError(f"--data {text!r}: needs at least 2 images")
    _check_size(len(x), resolution, f"--data {text!r}")
    x = resize_images(np.ascontiguousarray(x), resolution)
    return ImageSplits(name or text, *split(x, y, val_fraction, seed), classes, notes)


def _synthetic(text: str, rest: str, resolution: int, val_fraction: float, seed: int) -> ImageSplits:
    opts = _options(rest)
    unknown = set(opts) - {"classes", "images", "seed"}
    if unknown:
        raise DataError(f"--data synthetic: unknown option {sorted(unknown)[0]!r} (classes, images, seed)")
    try:
        classes, images = int(opts.get("classes", 10)), int(opts.get("images", 6000))
        data_seed = int(opts.get("seed", seed))
    except ValueError:
        raise DataError(f"--data {text!r}: options must be integers") from None
    if not 2 <= classes <= SYNTHETIC_CLASSES or images < 2 * classes:
        raise DataError(f"--data {text!r}: classes must be 2..{SYNTHETIC_CLASSES} and images at least 2 per class")
    _check_size(images, resolution, f"--data {text!r}")
    x, y = generate(images, resolution, classes, seed=data_seed)
    return _held_out(text, x, y, classes, [], resolution, val_fraction, seed,
                     f"synthetic:classes={classes},images={images},seed={data_seed}")


def _npz(text: str, rest: str, resolution: int, val_fraction: float, seed: int) -> ImageSplits:
    x, y, classes = _load_npz(rest)
    return _held_out(text, x, y, classes, [], resolution, val_fraction, seed)


def _cifar(kind: str) -> Callable[..., ImageSplits]:
    def load(text: str, rest: str, resolution: int, val_fraction: float, seed: int) -> ImageSplits:
        x, y, classes = _load_cifar(kind, rest)
        return _held_out(text, x, y, classes, [], resolution, val_fraction, seed)
    return load


def _folder(text: str, rest: str, resolution: int, val_fraction: float, seed: int) -> ImageSplits:
    if split_folders(rest):
        return _load_split_folder(text, rest, resolution, val_fraction, seed)
    x, y, names, notes = _load_folder(rest, resolution)
    return _held_out(text, x, y, len(names), notes, resolution, val_fraction, seed)


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


def load_test_data(text: str, resolution: int, train: ImageSplits) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """The test split of the data set ``text`` names, at ``resolution``, labelled as ``train`` is; None when it
    has none. Called by nas-train alone: a search never reads a test split.

    Returns ``(x, y, warnings)``. Test images of a class the training split lacks are warned about: those of a
    class the network has no output for (a ``test/`` sub-folder that ``train/`` lacks, a label past the class
    count) are left out; those of a class with an output but no training image are kept (and cannot be
    learnt).
    """
    source, rest = parse_data(text)
    found = source.load_test(rest, resolution, train) if source.load_test else None
    if found is None or not len(found[0]):
        return None
    x, y, notes = found
    beyond = y >= train.num_classes
    if beyond.any():
        notes.append(f"warning: {text}: {int(beyond.sum())} test images have labels {_class_list(np.unique(y[beyond]))}"
                     f", past the {train.num_classes} classes of the training split: left out")
        x, y = x[~beyond], y[~beyond]
    untrained = np.setdiff1d(np.unique(y), np.unique(train.y_train))
    if len(untrained):
        notes.append(f"warning: {text}: test labels {_class_list(untrained)} have no training image "
                     f"({int(np.isin(y, untrained).sum())} test images); the network cannot learn them")
    if not len(x):
        return None
    _check_size(len(x), resolution, f"{text} (test)")
    return resize_images(np.ascontiguousarray(x), resolution), y, notes


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


def _npz_test(rest: str, resolution: int, train: ImageSplits) -> tuple[np.ndarray, np.ndarray, list[str]]:
    x, y, _ = _load_npz(rest, test=True)
    return x, y, npz_test_notes(rest, resolution, train, x) if len(x) else []


def _cifar_test(kind: str) -> Callable[..., tuple[np.ndarray, np.ndarray, list[str]]]:
    def load(rest: str, resolution: int, train: ImageSplits) -> tuple[np.ndarray, np.ndarray, list[str]]:
        x, y, _ = _load_cifar(kind, rest, test=True)
        return x, y, []
    return load


def _folder_test(rest: str, resolution: int, train: ImageSplits) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    if "test" not in (split_folders(rest) or {}):
        return None
    return _load_test_folder(rest, resolution, train)


# --data csv:FILE: a CSV of image paths and labels. Columns: path (relative to the CSV's folder, or absolute),
# label (a class name or an integer), and optionally split (train, val or test; empty or absent: train).
# Classes are the training rows' labels, sorted (integers as they are); rows marked val are held out as given
# (without any, a random share of the training rows); rows marked test are read only by nas-train, once.
# Images are decoded like an image folder's and cached; one that is missing or broken is skipped with a warning.
CSV_SPLITS = ("train", "val", "test")


def _csv_rows(path: str) -> tuple[Path, list[dict[str, str]]]:
    file = Path(path)
    if not file.is_file():
        raise DataError(f"csv:{path}: no such file")
    try:
        with open(file, newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"csv:{path}: not a readable CSV ({exc})") from None
    missing = [c for c in ("path", "label") if c not in columns]
    if missing:
        raise DataError(f"csv:{path}: needs columns path and label (missing {', '.join(missing)}; found "
                        f"{', '.join(columns) or 'none'})")
    for number, row in enumerate(rows, start=2):
        if (row.get("split") or "train").strip() not in CSV_SPLITS:
            raise DataError(f"csv:{path}: line {number}: split {row.get('split')!r} is not one of "
                            f"{', '.join(CSV_SPLITS)}")
    return file.parent, rows


def _csv_classes(rows: list[dict[str, str]], path: str) -> dict[str, int]:
    """Label text -> class index: the training rows' labels, integers as they are, names sorted."""
    labels = sorted({row["label"].strip() for row in rows if _csv_split(row) != "test"})
    if not labels:
        raise DataError(f"csv:{path}: no training rows")
    if all(label.isdigit() for label in labels):
        return {label: int(label) for label in labels}
    return {label: index for index, label in enumerate(labels)}


def _csv_split(row: dict[str, str]) -> str:
    return (row.get("split") or "train").strip()


def _csv_files(rows: list[dict[str, str]], folder: Path, classes: dict[str, int], which: str) -> list[tuple[int, Path]]:
    files = []
    for row in rows:
        if _csv_split(row) == which and row["label"].strip() in classes:
            image = Path(row["path"].strip())
            files.append((classes[row["label"].strip()], image if image.is_absolute() else folder / image))
    return files


def _csv(text: str, rest: str, resolution: int, val_fraction: float, seed: int) -> ImageSplits:
    """The training rows, and the held-out ones as given (or a random share of the training rows)."""
    folder, rows = _csv_rows(rest)
    classes = _csv_classes(rows, rest)
    count = max(classes.values()) + 1
    where = f"csv:{rest}"
    x, y, notes = decode_files(_csv_files(rows, folder, classes, "train"), resolution, where, folder)
    val = _csv_files(rows, folder, classes, "val")
    if not val:
        return _held_out(text, x, y, count, notes, resolution, val_fraction, seed)
    x_val, y_val, val_notes = decode_files(val, resolution, where, folder)
    return ImageSplits(text, x, y, x_val, y_val, count, notes + val_notes)


def _csv_test(rest: str, resolution: int, train: ImageSplits) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """The rows marked test, labelled by the training classes (a label the training rows lack: left out, with
    a warning)."""
    folder, rows = _csv_rows(rest)
    classes = _csv_classes(rows, rest)
    tests = [row for row in rows if _csv_split(row) == "test"]
    if not tests:
        return None
    unknown = sorted({row["label"].strip() for row in tests} - set(classes))
    notes = [f"warning: csv:{rest}: test labels {', '.join(unknown)} are not among the training labels: their "
             f"images are left out"] if unknown else []
    files = _csv_files(rows, folder, classes, "test")
    if not files:
        return None
    x, y, skipped = decode_files(files, resolution, f"csv:{rest} (test)", folder)
    return x, y, notes + skipped


@dataclass(frozen=True)
class Source:
    """One ``--data`` format: ``prefix:ARGUMENT``, how its training data loads (resized and split into training
    and held-out images), and how its test split loads (None: it has none). What each one is: the module's
    docstring and docs/data.md."""

    prefix: str
    argument: str  # what follows the colon: PATH, DIR, FILE, or "" (options only)
    load: Callable[[str, str, int, float, int], ImageSplits]
    load_test: Callable[[str, int, ImageSplits], tuple[np.ndarray, np.ndarray, list[str]] | None] | None = None
    built_in: bool = False  # made by the toolkit (no user's images): a search then trains no finalists

    @property
    def usage(self) -> str:
        return f"{self.prefix}:{self.argument}" if self.argument else self.prefix


def _sources() -> dict[str, Source]:
    return {s.prefix: s for s in (
        Source("synthetic", "", _synthetic, built_in=True),
        Source("npz", "PATH", _npz, _npz_test),
        Source("cifar10", "DIR", _cifar("cifar10"), _cifar_test("cifar10")),
        Source("cifar100", "DIR", _cifar("cifar100"), _cifar_test("cifar100")),
        Source("folder", "DIR", _folder, _folder_test),
        Source("csv", "FILE", _csv, _csv_test),
    )}


SOURCES: dict[str, Source] = _sources()  # prefix -> format: every --data string, help text and error


def data_formats() -> str:
    """The formats --data takes, as help texts and errors list them."""
    return ", ".join(source.usage for source in SOURCES.values())


STORED_SIZE_SAMPLE = 25  # image files whose headers are read to tell the size a folder's images are stored at


def stored_resolution(text: str) -> int | None:
    """The size the images a ``--data`` string names are stored at (the shorter side; for files, the median of
    up to STORED_SIZE_SAMPLE images' headers), or None when it has none (synthetic data, made at any size) or
    the data cannot be read (its loader then says why)."""
    prefix, _, rest = text.partition(":")
    try:
        if prefix in ("cifar10", "cifar100"):
            return 32
        if prefix == "npz":
            shape = _npz_shape(rest, "x")
            return int(min(shape[1:3])) if len(shape) >= 3 else None
        if prefix == "folder":
            root = (split_folders(rest) or {}).get("train", Path(rest))
            files = [f for f in sorted(root.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        elif prefix == "csv":
            folder, rows = _csv_rows(rest)
            files = [Path(r["path"].strip()) if Path(r["path"].strip()).is_absolute() else folder / r["path"].strip()
                     for r in rows if _csv_split(r) == "train"]
        else:
            return None
    except (OSError, ValueError, KeyError, DataError):
        return None
    return _median_short_side(files[:: max(1, len(files) // STORED_SIZE_SAMPLE)][:STORED_SIZE_SAMPLE])


def _median_short_side(files: list[Path]) -> int | None:
    """The median shorter side of the images (headers only), None when none can be read."""
    from PIL import Image

    sides = []
    for f in files:
        try:
            with Image.open(f) as image:
                sides.append(min(image.size))
        except (OSError, ValueError):
            continue
    return int(np.median(sides)) if sides else None


def is_built_in(text: str) -> bool:
    """Whether a ``--data`` string names data the toolkit makes itself (not a user's images)."""
    source = SOURCES.get(text.partition(":")[0])
    return source is not None and source.built_in


def parse_data(text: str) -> tuple[Source, str]:
    """The format a ``--data`` string names and what follows its colon; one-line DataError otherwise."""
    prefix, _, rest = text.partition(":")
    source = SOURCES.get(prefix)
    if source is None or (source.argument and not rest):
        raise DataError(f"--data {text!r}: expected {data_formats()}")
    return source, rest
