"""Training augmentation as batched tensor ops on the device: random-resized-crop and horizontal flip.

Each image gets its own crop (area ``scale`` of the image, aspect ratio 3/4 to 4/3, as torchvision's
RandomResizedCrop) and a coin-flip mirror, applied together as one affine resampling (``affine_grid`` +
``grid_sample``, bilinear) back to the input size: no per-image Python, no CPU round trip.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

RATIO = (3 / 4, 4 / 3)


def crop_boxes(n: int, scale: tuple[float, float], generator: torch.Generator,
               device: torch.device) -> torch.Tensor:
    """``n`` affine matrices (n, 2, 3), each a random crop (and a mirror half of the time) in normalised
    coordinates: the crop covers a fraction in ``scale`` of the area, its sides at most the image's."""
    area = torch.empty(n, device=device).uniform_(scale[0], scale[1], generator=generator)
    log_ratio = torch.empty(n, device=device).uniform_(math.log(RATIO[0]), math.log(RATIO[1]),
                                                       generator=generator)
    ratio = log_ratio.exp()
    width = (area * ratio).sqrt().clamp(max=1.0)
    height = (area / ratio).sqrt().clamp(max=1.0)
    cx = (torch.rand(n, device=device, generator=generator) * 2 - 1) * (1 - width)
    cy = (torch.rand(n, device=device, generator=generator) * 2 - 1) * (1 - height)
    mirror = torch.where(torch.rand(n, device=device, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = width * mirror
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = height
    theta[:, 1, 2] = cy
    return theta


def random_resized_crop_flip(images: torch.Tensor, scale: tuple[float, float],
                             generator: torch.Generator) -> torch.Tensor:
    """Random-resized-crop and flip a float NCHW batch, keeping its size."""
    n, c, h, w = images.shape
    theta = crop_boxes(n, scale, generator, images.device).to(images.dtype)
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
