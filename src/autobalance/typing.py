"""Shared type aliases used across the package."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

ArrayLike = Tensor | np.ndarray | Sequence[int]
Reduction = Literal["mean", "sum", "none"]
MatVec = Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]]
Solver = Callable[[MatVec, tuple[Tensor, ...]], tuple[Tensor, ...]]
Device = str | torch.device

REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")

__all__ = ["REDUCTIONS", "ArrayLike", "Device", "MatVec", "Reduction", "Solver"]
