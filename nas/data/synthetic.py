"""A procedural image-classification proxy task, generated deterministically from a seed.

Each class is a (shape, texture) pair: disk, square, triangle, plus or ring, filled solid, striped or
checkered. Every image draws its object at a random position, scale, orientation and colour, on a
cluttered background (a colour gradient, random bars and blobs of other colours, pixel noise), so colour
and position carry no label information and the network has to see form and texture.
"""
from __future__ import annotations

import numpy as np

SHAPES = ("disk", "square", "triangle", "plus", "ring")
TEXTURES = ("solid", "stripes", "checker")
MAX_CLASSES = len(SHAPES) * len(TEXTURES)


def _shape_mask(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r2 = u * u + v * v
    if name == "disk":
        return r2 < 1.0
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) < 0.8
    if name == "triangle":  # equilateral, circumradius 1
        return (v > -0.5) & (np.sqrt(3) * u + v < 1.0) & (-np.sqrt(3) * u + v < 1.0)
    if name == "plus":
        return ((np.abs(u) < 0.33) & (np.abs(v) < 1.0)) | ((np.abs(v) < 0.33) & (np.abs(u) < 1.0))
    if name == "ring":
        return (r2 < 1.0) & (r2 > 0.36)
    raise ValueError(name)


def _texture(name: str, u: np.ndarray, v: np.ndarray, freq: np.ndarray) -> np.ndarray:
    if name == "solid":
        return np.ones_like(u, dtype=bool)
    if name == "stripes":
        return np.sin(u * freq) > 0
    if name == "checker":
        return (np.sin(u * freq) > 0) ^ (np.sin(v * freq) > 0)
    raise ValueError(name)


def class_names(num_classes: int) -> list[str]:
    """Names of the first ``num_classes`` classes (shape-texture), textures varying fastest."""
    pairs = [(s, t) for t in TEXTURES[:2] for s in SHAPES] + [(s, "checker") for s in SHAPES]
    return [f"{s}-{t}" for s, t in pairs[:num_classes]]


def generate(num_images: int, resolution: int, num_classes: int = 10, seed: int = 0, clutter: int = 3,
             noise: float = 0.04, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``num_images`` uint8 NHWC images and int64 labels (balanced, shuffled), deterministic in ``seed``."""
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"synthetic: classes must be between 2 and {MAX_CLASSES}, got {num_classes}")
    rng = np.random.default_rng(seed)
    labels = np.arange(num_images) % num_classes
    rng.shuffle(labels)
    names = [n.split("-") for n in class_names(num_classes)]
    images = np.empty((num_images, resolution, resolution, 3), np.uint8)
    grid = (np.arange(resolution) + 0.5) / resolution * 2 - 1  # pixel centres in [-1, 1]
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    for start in range(0, num_images, chunk):
        n = min(chunk, num_images - start)
        images[start:start + n] = _render_chunk(rng, labels[start:start + n], names, xs, ys, clutter, noise)
    return images, labels.astype(np.int64)


def _render_chunk(rng: np.random.Generator, labels: np.ndarray, names: list[list[str]], xs: np.ndarray,
                  ys: np.ndarray, clutter: int, noise: float) -> np.ndarray:
    n = len(labels)
    def col(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, (n, 1, 1, 3)).astype(np.float32)

    # background: a random two-colour gradient in a random direction
    angle = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    t = (np.cos(angle) * xs + np.sin(angle) * ys + 1) / 2
    image = col(0.0, 0.45) * (1 - t[..., None]) + col(0.0, 0.45) * t[..., None]  # darker background
    # clutter: bars and blobs in other colours
    for _ in range(clutter):
        cx, cy = rng.uniform(-1, 1, (2, n, 1, 1))
        a = rng.uniform(0, np.pi, (n, 1, 1))
        along = np.cos(a) * (xs - cx) + np.sin(a) * (ys - cy)
        across = -np.sin(a) * (xs - cx) + np.cos(a) * (ys - cy)
        bar = (np.abs(across) < rng.uniform(0.02, 0.08, (n, 1, 1))) & (np.abs(along) < rng.uniform(0.2, 0.9, (n, 1, 1)))
        blob = (xs - cx) ** 2 + (ys - cy) ** 2 < rng.uniform(0.003, 0.02, (n, 1, 1))
        mask = np.where(rng.uniform(size=(n, 1, 1)) < 0.5, bar, blob)
        image = np.where(mask[..., None], col(0.1, 0.7), image)
    # the object: position, scale, orientation, two colours, texture frequency
    scale = rng.uniform(0.4, 0.75, (n, 1, 1))
    cx, cy = (rng.uniform(-1, 1, (2, n, 1, 1)) * (1 - scale))
    theta = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    u = (np.cos(theta) * (xs - cx) + np.sin(theta) * (ys - cy)) / scale
    v = (-np.sin(theta) * (xs - cx) + np.cos(theta) * (ys - cy)) / scale
    freq = rng.uniform(6, 9, (n, 1, 1))
    fg_a, fg_b = col(0.55, 1.0), col(0.0, 1.0)  # the object stands out from the background
    fg_b = np.where(np.abs(fg_a - fg_b).sum(-1, keepdims=True) < 0.6, 1 - fg_a, fg_b)  # visible texture
    for i in range(n):
        shape, texture = names[labels[i]]
        inside = _shape_mask(shape, u[i], v[i])
        pattern = _texture(texture, u[i], v[i], freq[i])
        colour = np.where(pattern[..., None], fg_a[i], fg_b[i])
        image[i] = np.where(inside[..., None], colour, image[i])
    image += rng.normal(0, noise, image.shape).astype(np.float32)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
