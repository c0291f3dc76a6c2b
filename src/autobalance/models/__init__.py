"""Classifiers with a ``features``/``head`` split: CIFAR ResNets, MLPs, optional torchvision."""

from __future__ import annotations

from autobalance.models.factory import MODEL_NAMES, make_model
from autobalance.models.heads import NormedLinear
from autobalance.models.mlp import MLP, linear_model
from autobalance.models.resnet_cifar import (
    BasicBlock,
    CifarResNet,
    cifar_resnet,
    resnet8,
    resnet20,
    resnet32,
    to_channels_last,
)
from autobalance.models.torchvision_models import (
    TorchvisionClassifier,
    require_torchvision,
    resnet50,
)

__all__ = [
    "MLP",
    "MODEL_NAMES",
    "BasicBlock",
    "CifarResNet",
    "NormedLinear",
    "TorchvisionClassifier",
    "cifar_resnet",
    "linear_model",
    "make_model",
    "require_torchvision",
    "resnet8",
    "resnet20",
    "resnet32",
    "resnet50",
    "to_channels_last",
]
