"""``make_model(name, ...)``: every model of the package by name.

All models expose ``features(x) → (N, D)`` and ``head`` (``nn.Linear``) with
``forward = head ∘ features``; the bilevel search relies on this split for head-scope
hypergradients and cached features (AutoBalance, Li et al., NeurIPS 2021, arXiv 2201.01212).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import nn

from autobalance.models.heads import NormedLinear
from autobalance.models.mlp import MLP
from autobalance.models.resnet_cifar import cifar_resnet, to_channels_last
from autobalance.models.torchvision_models import resnet50

MODEL_NAMES: tuple[str, ...] = ("resnet8", "resnet20", "resnet32", "mlp", "linear", "resnet50")
_CIFAR_DEPTHS = {"resnet8": 8, "resnet20": 20, "resnet32": 32}


def _in_features(in_shape: Sequence[int] | None, in_features: int | None, name: str) -> int:
    if in_features is not None:
        return int(in_features)
    if in_shape is None:
        raise ValueError(f"model '{name}' needs in_features or in_shape")
    return math.prod(int(d) for d in in_shape)


def make_model(
    name: str,
    num_classes: int,
    in_shape: Sequence[int] | None = None,
    in_features: int | None = None,
    *,
    channels_last: bool = False,
    **opts: Any,
) -> nn.Module:
    """Build model ``name`` for ``num_classes`` classes.

    * ``resnet8`` / ``resnet20`` / ``resnet32``: CIFAR ResNets (``in_shape = (C, H, W)`` sets the
      input channels; option ``width``).
    * ``mlp``: :class:`MLP` over ``in_features`` (or ``prod(in_shape)``) inputs, options
      ``hidden`` (default ``(256,)``), ``dropout``, ``activation``.
    * ``linear``: the MLP with no hidden layer.
    * ``resnet50``: torchvision's ResNet-50 (needs torchvision), option ``weights``.

    ``norm_head=True`` swaps the linear head for a cosine classifier
    (:class:`~autobalance.models.heads.NormedLinear`), as LDAM expects.

    ``channels_last=True`` stores the model (and converts image inputs) in NHWC layout.
    """
    norm_head = bool(opts.pop("norm_head", False))
    if name in _CIFAR_DEPTHS:
        in_channels = int(in_shape[0]) if in_shape is not None else 3
        model: nn.Module = cifar_resnet(
            _CIFAR_DEPTHS[name], num_classes, in_channels=in_channels, **opts
        )
    elif name == "mlp":
        opts.setdefault("hidden", (256,))
        model = MLP(_in_features(in_shape, in_features, name), num_classes, **opts)
    elif name == "linear":
        model = MLP(_in_features(in_shape, in_features, name), num_classes, hidden=(), **opts)
    elif name == "resnet50":
        model = resnet50(num_classes, **opts)
    else:
        raise ValueError(f"Unknown model '{name}', expected one of {MODEL_NAMES}")
    if norm_head:  # cosine classifier, as LDAM expects (its loss scales by s)
        head = model.head
        if not isinstance(head, nn.Linear):
            raise ValueError(f"norm_head needs a linear head, model '{name}' has {type(head)}")
        model.head = NormedLinear(head.in_features, head.out_features)
    return to_channels_last(model) if channels_last else model


__all__ = ["MODEL_NAMES", "make_model"]
