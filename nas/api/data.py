"""Data given from Python (arrays, a torch Dataset) as what ``--data`` takes: an .npz written once."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nas.console import warn
from nas.data.datasets import data_warnings
from nas.errors import UserInputError

ARRAYS_FILE = "data.npz"


def data_argument(data: Any, folder: Path) -> str:
    """``data`` as a ``--data`` string: a string as it is; arrays or a Dataset saved to ``folder/data.npz``."""
    if isinstance(data, str):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        arrays = {"x": data[0], "y": data[1]}
    elif isinstance(data, dict):
        arrays = dict(data)
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        arrays = dataset_arrays(data)
    else:
        raise UserInputError(f"data: {type(data).__name__} is not a --data string, (x, y) arrays, a dict of arrays "
                             f"or a Dataset of (image, label) pairs")
    if "x" not in arrays or "y" not in arrays:
        raise UserInputError(f"data: a dict needs arrays 'x' and 'y' (found {sorted(arrays)})")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ARRAYS_FILE
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})
    return f"npz:{path}"


def load_proxy_data(proxy: Any) -> Any:
    """The data of a proxy (ProxySettings), loaded before Ray starts: a data error raises DataError (a
    UserInputError, one line); what makes the data a poor judge of architectures is said as warnings on stderr."""
    data = proxy.data_ref.load()
    for warning in data_warnings(data, proxy.batch_size):
        warn(warning)
    return data


def dataset_arrays(dataset: Any) -> dict[str, np.ndarray]:
    """A Dataset of (image, label) pairs as uint8 N x H x W x 3 images and integer labels. Images may be PIL
    images, HWC uint8 arrays, or CHW float tensors in [0, 1] (what torchvision's ToTensor gives)."""
    images, labels = [], []
    for index in range(len(dataset)):
        image, label = dataset[index]
        images.append(_as_uint8_hwc(image))
        labels.append(int(label))
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise UserInputError(f"data: the Dataset's images differ in shape ({sorted(shapes)[:3]}...); resize them "
                             f"to one size first (a torchvision Resize in its transform)")
    return {"x": np.stack(images), "y": np.array(labels, dtype=np.int64)}


def _as_uint8_hwc(image: Any) -> np.ndarray:
    if hasattr(image, "detach"):  # a torch tensor, CHW
        array = image.detach().cpu().numpy()
        if array.ndim == 3 and array.shape[0] in (1, 3):
            array = np.moveaxis(array, 0, -1)
    else:
        array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(np.round(array.astype(np.float32) * (255 if array.max(initial=0) <= 1 else 1)), 0, 255)
        array = array.astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return array
