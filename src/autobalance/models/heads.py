"""Classifier heads.

``NormedLinear`` is the cosine classifier used with LDAM (Cao et al. 2019, arXiv 1906.07413):
f_j(x) = ⟨x/‖x‖, w_j/‖w_j‖⟩ ∈ [−1, 1]; the loss multiplies by its scale s (s = 30 for LDAM).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class NormedLinear(nn.Module):
    """Cosine-similarity head f(x) = normalize(x) · normalize(W)ᵀ, no bias."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


__all__ = ["NormedLinear"]
