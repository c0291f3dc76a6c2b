"""CIFAR ResNets of depth 6n+2 with option-A (parameter-free) shortcuts.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, arXiv 1512.03385, §4.2:
a 3×3 conv with ``w`` filters, then three stages of ``n`` basic blocks with ``w, 2w, 4w`` filters
(``w = 16``) on 32², 16², 8² maps, global average pooling and a linear head. A stage that halves
the map and doubles the width uses the identity shortcut "A": subsample by 2 and zero-pad the new
channels, so shortcuts add no parameters. Depth 20 → 0.27M, 32 → 0.46M parameters for 10 classes.

Every model here has ``features(x) → (N, D)`` and ``head`` (an ``nn.Linear``), with
``forward(x) = head(features(x))``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ShortcutA(nn.Module):
    """``x ↦ zero-pad channels(x[:, :, ::s, ::s])`` from ``c_in`` to ``c_out`` channels."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        extra = c_out - c_in
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad))


class BasicBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))`` with 3×3 convolutions."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        changes = stride != 1 or c_in != c_out
        self.shortcut: nn.Module = ShortcutA(c_in, c_out, stride) if changes else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32×32 inputs; ``features`` ends with global average pooling (4w dims)."""

    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        width: int = 16,
        in_channels: int = 3,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(
                f"CIFAR ResNet depth must be 6n+2 with n ≥ 1 (8, 20, 32, ...), got {depth}"
            )
        if num_classes < 1 or width < 1:
            raise ValueError(f"num_classes and width must be ≥ 1, got {num_classes}, {width}")
        n = (depth - 2) // 6
        self.depth = depth
        self.channels_last = channels_last
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages = []
        c_in = width
        for i, c_out in enumerate((width, 2 * width, 4 * width)):
            blocks = [
                BasicBlock(c_in if j == 0 else c_out, c_out, 2 if (i > 0 and j == 0) else 1)
                for j in range(n)
            ]
            stages.append(nn.Sequential(*blocks))
            c_in = c_out
        self.layer1, self.layer2, self.layer3 = stages
        self.feature_dim = 4 * width
        self.head = nn.Linear(self.feature_dim, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features ``mean_{h,w} layer3(...)``, shape (N, 4·width)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return out.mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def cifar_resnet(
    depth: int,
    num_classes: int = 10,
    width: int = 16,
    *,
    in_channels: int = 3,
    channels_last: bool = False,
) -> CifarResNet:
    """ResNet-``depth`` (6n+2) for CIFAR, He et al. 2016 §4.2."""
    return CifarResNet(depth, num_classes, width, in_channels, channels_last)


def resnet8(num_classes: int = 10, **kwargs: Any) -> CifarResNet:
    """ResNet-8 (n = 1): the CPU-scale model of the benchmarks, 75K parameters for 10 classes."""
    return cifar_resnet(8, num_classes, **kwargs)


def resnet20(num_classes: int = 10, **kwargs: Any) -> CifarResNet:
    """ResNet-20 (n = 3), 0.27M parameters for 10 classes."""
    return cifar_resnet(20, num_classes, **kwargs)


def resnet32(num_classes: int = 10, **kwargs: Any) -> CifarResNet:
    """ResNet-32 (n = 5), 0.46M parameters for 10 classes; the AutoBalance paper's CIFAR model."""
    return cifar_resnet(32, num_classes, **kwargs)


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store conv weights as NHWC and make models that support it convert their inputs too."""
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    for m in model.modules():
        if hasattr(m, "channels_last"):
            setattr(m, "channels_last", True)  # noqa: B010
    return model


__all__ = [
    "BasicBlock",
    "CifarResNet",
    "ShortcutA",
    "cifar_resnet",
    "resnet8",
    "resnet20",
    "resnet32",
    "to_channels_last",
]
