"""Proxy datasets: uint8 NHWC arrays plus int64 labels, resized once to the proxy resolution, with a
held-out validation split taken from the training data (as MnasNet held out 50K ImageNet training images).

The ``--data`` string selects one:

- ``synthetic`` (default), or ``synthetic:classes=10,images=6000,seed=0``: procedural shapes and textures
  on cluttered backgrounds (nas/data/synthetic.py), generated deterministically; 2 to 15 classes.
- ``npz:PATH``: a NumPy ``.npz`` with ``x`` (N, H, W, 3) or (N, H, W) uint8 images and ``y`` (N,) labels.
- ``cifar10:DIR`` / ``cifar100:DIR``: the standard python-pickle batches (``data_batch_1..5`` or ``train``)
  in a local directory. Nothing is downloaded.
- ``folder:DIR``: one sub-folder of images per class, decoded with Pillow, resized (shorter side, then a
  centre crop) and cached once as ``.npy`` under ``$NAS_CACHE_DIR`` (default ``$XDG_CACHE_HOME/nas-toolkit``);
  the cache is keyed by the folder's file list, sizes and times, so a changed folder is read again. A
  folder split as ``train/``, ``val/`` and ``test/`` (torchvision's ImageFolder layout, each with the class
  sub-folders) trains on ``train/`` and holds out ``val/`` as given (``train/`` split at random without a
  ``val/``).

- ``csv:FILE``: a CSV of image paths and labels (columns ``path``, ``label``, optionally ``split``).

Each format is one class in ``nas/data/sources/`` and one entry of ``SOURCES`` (the help texts and errors list
them from there); the images, the splits and the decoded-image cache are modules of their own
(``nas.data.images``, ``nas.data.splits``, ``nas.data.decode_cache``). This module is where the rest of the
toolkit reads them from.
A test split (``test_batch`` / ``test`` beside CIFAR's training batches, a ``test/`` folder, ``x_test`` and
``y_test`` in an ``.npz``, rows marked ``test`` in a CSV) is read only by :func:`load_test_data`, which
nas-train alone calls: a search never sees it.
"""
from __future__ import annotations

from nas.data.decode_cache import cache_root, decode_files
from nas.data.images import IMAGE_SUFFIXES, DataError, resize_images
from nas.data.sources import (SOURCES, DataRef, data_formats, is_built_in, load_data, load_test_data, parse_data,
                              stored_resolution)
from nas.data.splits import MIN_VAL_IMAGES, ImageSplits, data_warnings, split

__all__ = ["IMAGE_SUFFIXES", "MIN_VAL_IMAGES", "SOURCES", "DataError", "DataRef", "ImageSplits", "cache_root",
           "data_formats", "data_warnings", "decode_files", "is_built_in", "load_data", "load_test_data",
           "parse_data", "resize_images", "split", "stored_resolution"]
