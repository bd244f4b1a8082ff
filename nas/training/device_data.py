"""Images on the training device: uint8 NHWC arrays moved once, normalised and augmented there as tensor ops,
and the evaluation of a network on them (top-1 accuracy, BatchNorm statistics re-estimated)."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from nas.training.augment import random_resized_crop_flip

EVAL_BATCH = 256


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor of ``array``, sharing its memory when it is writable. Ray hands a trial the proxy data as
    read-only arrays from its object store; torch warns about those on every trial, so they are copied."""
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


class DeviceData:
    """Uint8 NHWC images and their labels on ``device``, normalised by ``mean`` and ``std`` (N, 3, 1, 1)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, device: torch.device, mean: torch.Tensor,
                 std: torch.Tensor) -> None:
        self.x = _as_tensor(x).to(device)
        self.y = _as_tensor(np.asarray(y, np.int64)).to(device)
        self.device, self.mean, self.std = device, mean, std

    def __len__(self) -> int:
        return len(self.y)

    def to_input(self, images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Uint8 NHWC images as the network's normalised channels-last input."""
        x = images.permute(0, 3, 1, 2).float().div_(255).sub_(self.mean).div_(self.std)
        return x.to(dtype).contiguous(memory_format=torch.channels_last)

    def augmented(self, index: torch.Tensor, augment: str, crop_scale: float,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A training batch of the images at ``index``: ``resized-crop`` (random-resized-crop of ``crop_scale``
        to 1 of the area, and flip) or ``pad-crop`` (reflect-padded by an eighth, cropped back, and flip)."""
        if augment == "resized-crop":
            x = random_resized_crop_flip(self.to_input(self.x[index]), (crop_scale, 1.0), generator)
            return x.contiguous(memory_format=torch.channels_last), self.y[index]
        return self.to_input(self._pad_crop_flip(self.x[index], generator)), self.y[index]

    def _pad_crop_flip(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, h, w, _ = images.shape
        pad = max(1, h // 8)
        padded = F.pad(images.permute(0, 3, 1, 2).float(), (pad,) * 4, mode="reflect")
        oy = torch.randint(0, 2 * pad + 1, (n, 1, 1), generator=generator, device=self.device)
        ox = torch.randint(0, 2 * pad + 1, (n, 1, 1), generator=generator, device=self.device)
        rows = (torch.arange(h, device=self.device).view(1, h, 1) + oy).expand(n, h, w)
        cols = (torch.arange(w, device=self.device).view(1, 1, w) + ox).expand(n, h, w)
        batch = torch.arange(n, device=self.device).view(n, 1, 1).expand(n, h, w)
        images = padded.permute(0, 2, 3, 1)[batch, rows, cols]
        flip = torch.rand(n, generator=generator, device=self.device) < 0.5
        return torch.where(flip.view(n, 1, 1, 1), images.flip(2), images)

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The images in order, normalised, in batches (for evaluation)."""
        for start in range(0, len(self), batch_size):
            yield self.to_input(self.x[start:start + batch_size]), self.y[start:start + batch_size]


def predictions(model: torch.nn.Module, data: DeviceData, autocast: bool, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """The class ``model`` predicts for each image of ``data``, in eval mode: the one evaluation loop (proxy
    trainings, nas-train's epochs and test, the finalists' image-by-image judgement)."""
    model.eval()
    out = []
    with torch.no_grad(), torch.autocast(data.device.type, dtype=torch.bfloat16, enabled=autocast):
        for x, _ in data.batches(batch_size):
            out.append(model(x).argmax(1))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64, device=data.device)


def top1_accuracy(model: torch.nn.Module, data: DeviceData, autocast: bool, batch_size: int = EVAL_BATCH) -> float:
    """Top-1 accuracy on ``data`` in eval mode."""
    return int((predictions(model, data, autocast, batch_size) == data.y).sum()) / max(1, len(data))


def recalibrate_batchnorm(model: torch.nn.Module, data: DeviceData, autocast: bool, batches: int = 4,
                          batch_size: int = EVAL_BATCH) -> None:
    """Re-estimate BatchNorm running statistics as exact averages over a few training batches.

    With TF's momentum (0.01 in PyTorch's convention) a brief proxy run leaves the running statistics
    mostly at their initial values; evaluating with them would measure the schedule, not the network.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    with torch.no_grad(), torch.autocast(data.device.type, dtype=torch.bfloat16, enabled=autocast):
        for i, (x, _) in enumerate(data.batches(batch_size)):
            if i >= batches:
                break
            model(x)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
