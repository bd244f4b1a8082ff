"""The decoded-image cache: image files decoded once at a resolution and kept as ``.npy`` under
``$NAS_CACHE_DIR`` (default ``$XDG_CACHE_HOME/nas-toolkit``, ``~/.cache/nas-toolkit``), keyed by the files, their sizes and times, so a changed
set is read again. Losing it costs time, never data."""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from nas.data.images import DataError, check_size
from nas.files import atomic_path


def cache_root() -> Path:
    """Where every cache of the toolkit lives: ``$NAS_CACHE_DIR``; when it is not set, ``nas-toolkit`` under
    ``$XDG_CACHE_HOME``, itself ``~/.cache`` when not set (the XDG base directory convention)."""
    if os.environ.get("NAS_CACHE_DIR"):
        return Path(os.environ["NAS_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nas-toolkit"


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
    check_size(len(files), resolution, where)
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
