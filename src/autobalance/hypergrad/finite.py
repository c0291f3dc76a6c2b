"""Reporting non-finite hypergradients instead of applying them.

A diverging Neumann series (step too large for the Hessian's scale), an indefinite Hessian under
CG, or an overflow in the losses yield inf/NaN hypergradients. One such step would poison the
hyperparameters for good, so :func:`autobalance.hypergrad.implicit_hypergradient` raises
:class:`NonFiniteHypergradient` unless the caller asks for the raw tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class NonFiniteHypergradient(FloatingPointError):
    """The implicit hypergradient (Lorraine et al. 2020, arXiv 1911.02590) has inf or NaN."""


def hypergradient_is_finite(hypergradient: Sequence[Tensor]) -> bool:
    """Return True iff every entry of every tensor is finite (no inf, no NaN)."""
    return all(bool(torch.isfinite(t).all()) for t in hypergradient)


__all__ = ["NonFiniteHypergradient", "hypergradient_is_finite"]
