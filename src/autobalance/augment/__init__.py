"""Batched tensor augmentation (crop, flip, normalise) for in-memory image batches."""

from __future__ import annotations

from autobalance.augment.batched import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    BatchTransform,
    Normalize,
    make_image_transform,
    random_crop,
    random_flip,
    to_float,
)

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BatchTransform",
    "Normalize",
    "make_image_transform",
    "random_crop",
    "random_flip",
    "to_float",
]
