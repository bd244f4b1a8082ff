"""Proxy data: loading (synthetic, npz, CIFAR, image folders), splits, resizing and the decoded-image cache."""
