"""What every data source shares: decoded images as uint8 NHWC arrays with int64 labels, checked and resized,
and the one error a data set that cannot be used raises."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.errors import UserInputError
from search_spaces.spec import MAX_CLASSES


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class DataError(UserInputError):
    """A data string or data set that cannot be used (a user error: one line, exit 2)."""


def data_options(text: str) -> dict[str, str]:
    """``key=value,key=value`` (what follows ``synthetic:``) as a dict."""
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


def as_rgb(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        x = np.repeat(x[..., None], 3, axis=-1)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{where}: images must be (N, H, W, 3) or (N, H, W), got shape {x.shape}")
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.dtype != np.uint8:
        raise DataError(f"{where}: images must be uint8, got {x.dtype}")
    return x


def labels_of(y: np.ndarray, n: int, where: str) -> tuple[np.ndarray, int]:
    y = np.asarray(y).reshape(-1)
    if len(y) != n:
        raise DataError(f"{where}: {n} images but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise DataError(f"{where}: labels must be non-negative integers")
    if len(y) and y.max() >= MAX_CLASSES:
        raise DataError(f"{where}: labels go up to {int(y.max()):,}; at most {MAX_CLASSES:,} classes (labels "
                        f"0..{MAX_CLASSES - 1:,})")
    return y.astype(np.int64), int(y.max()) + 1 if len(y) else 0


MAX_DATA_BYTES = 16 * 2 ** 30  # the proxy arrays are held in memory (and copied to every trial worker)


def check_size(images: int, resolution: int, where: str) -> None:
    size = images * resolution * resolution * 3
    if size > MAX_DATA_BYTES:
        raise DataError(f"{where}: {images} images at {resolution}px take {size / 2 ** 30:.0f} GiB in memory (at "
                        f"most {MAX_DATA_BYTES // 2 ** 30} GiB); use fewer images or a lower resolution "
                        f"(--proxy-resolution; nas-train: --resolution)")


def median_short_side(files: list[Path]) -> int | None:
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
