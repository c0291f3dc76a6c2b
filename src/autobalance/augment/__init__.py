"""Batched tensor augmentation: fixed crop, flip, normalise (``batched``) and learned,
label-dependent policies A_y that join α in the search (``policy``, ``spherical``, ``ops``:
AutoBalance §2 personalised data augmentation and Lemma 2; ``factory``, ``io``)."""

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
from autobalance.augment.factory import (
    AUGMENT_KINDS,
    BatchAugment,
    as_batch_augment,
    build_policy,
    normalisation_of,
)
from autobalance.augment.io import (
    load_alpha_policy,
    load_policy,
    policy_from_dict,
    read_policy_trajectory,
    save_policy,
)
from autobalance.augment.ops import OPS
from autobalance.augment.policy import BatchPolicy, ImagePolicy, relaxed_bernoulli
from autobalance.augment.spherical import SphericalPolicy, sample_unit_ball

__all__ = [
    "AUGMENT_KINDS",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "OPS",
    "BatchAugment",
    "BatchPolicy",
    "BatchTransform",
    "ImagePolicy",
    "Normalize",
    "SphericalPolicy",
    "as_batch_augment",
    "build_policy",
    "load_alpha_policy",
    "load_policy",
    "make_image_transform",
    "normalisation_of",
    "policy_from_dict",
    "random_crop",
    "random_flip",
    "read_policy_trajectory",
    "relaxed_bernoulli",
    "sample_unit_ball",
    "save_policy",
    "to_float",
]
