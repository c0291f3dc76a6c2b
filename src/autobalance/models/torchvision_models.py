"""Optional torchvision backbones (ResNet-50 for ImageNet-LT, iNaturalist) with features/head.

ResNet-50 (He et al. 2016, arXiv 1512.03385) is the backbone the AutoBalance paper uses on
ImageNet-LT and iNaturalist-2018. torchvision is not a core dependency: the wrapper imports it on
use and says how to install it when missing. The backbone's final ``fc`` is replaced by the
identity, so ``features(x)`` is the pooled 2048-d vector and ``head`` a fresh ``nn.Linear``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn

TORCHVISION_HINT = (
    "pip install torch==2.14.1 torchvision==0.29.1 (or the torchvision release matching "
    f"your torch {torch.__version__.split('+')[0]})"
)


def require_torchvision() -> ModuleType:
    """Import torchvision, or raise an ImportError that says how to install it."""
    try:
        return importlib.import_module("torchvision")
    except ImportError as e:
        raise ImportError(f"this model needs torchvision: {TORCHVISION_HINT}") from e


class TorchvisionClassifier(nn.Module):
    """A torchvision model whose last linear layer ``fc`` becomes ``head``."""

    def __init__(self, backbone: nn.Module, num_classes: int, channels_last: bool = False) -> None:
        super().__init__()
        fc = getattr(backbone, "fc", None)
        if not isinstance(fc, nn.Linear):
            raise ValueError(
                f"{type(backbone).__name__} has no Linear 'fc' layer to split into a head"
            )
        self.feature_dim = fc.in_features
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.head = nn.Linear(self.feature_dim, num_classes)
        self.channels_last = channels_last

    def features(self, x: Tensor) -> Tensor:
        """The backbone's pooled features (N, fc.in_features)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.backbone(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def resnet50(num_classes: int = 1000, weights: Any = None, **kwargs: Any) -> TorchvisionClassifier:
    """torchvision ResNet-50 with a new ``num_classes`` head; ``weights`` as in torchvision."""
    tv = require_torchvision()
    channels_last = bool(kwargs.pop("channels_last", False))
    backbone = tv.models.resnet50(weights=weights, **kwargs)
    return TorchvisionClassifier(backbone, num_classes, channels_last=channels_last)


__all__ = ["TORCHVISION_HINT", "TorchvisionClassifier", "require_torchvision", "resnet50"]
