"""Vector arithmetic on tuples of tensors.

Parameters of a network are a tuple of tensors of different shapes. The linear solvers of this
subpackage treat such a tuple as one vector of the direct sum space, with the inner product
⟨x, y⟩ = Σ_i Σ_k x_i[k]·y_i[k]. These helpers spare every solver from flattening by hand.
Only the dense ``exact`` solver needs a flat vector, through :func:`flatten` / :func:`unflatten`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

TensorTuple = tuple[Tensor, ...]
Scalar = float | Tensor


def dot(x: Sequence[Tensor], y: Sequence[Tensor]) -> Tensor:
    """Inner product ⟨x, y⟩ = Σ_i sum(x_i · y_i), a 0-d tensor (no device synchronisation)."""
    _check_same_length(x, y)
    return torch.stack([torch.sum(a * b) for a, b in zip(x, y)]).sum()


def norm(x: Sequence[Tensor]) -> Tensor:
    """Euclidean norm ‖x‖ = sqrt(⟨x, x⟩), a 0-d tensor."""
    return torch.sqrt(dot(x, x))


def axpy(a: Scalar, x: Sequence[Tensor], y: Sequence[Tensor]) -> TensorTuple:
    """Return a·x + y, elementwise over the tuple."""
    _check_same_length(x, y)
    return tuple(a * xi + yi for xi, yi in zip(x, y))


def scale(a: Scalar, x: Sequence[Tensor]) -> TensorTuple:
    """Return a·x."""
    return tuple(a * xi for xi in x)


def add(x: Sequence[Tensor], y: Sequence[Tensor]) -> TensorTuple:
    """Return x + y."""
    _check_same_length(x, y)
    return tuple(xi + yi for xi, yi in zip(x, y))


def sub(x: Sequence[Tensor], y: Sequence[Tensor]) -> TensorTuple:
    """Return x − y."""
    _check_same_length(x, y)
    return tuple(xi - yi for xi, yi in zip(x, y))


def zeros_like(x: Sequence[Tensor]) -> TensorTuple:
    """A tuple of zero tensors shaped like ``x`` (never requiring grad)."""
    return tuple(torch.zeros_like(xi) for xi in x)


def detach(x: Sequence[Tensor]) -> TensorTuple:
    """Detach every tensor of the tuple from the autograd graph."""
    return tuple(xi.detach() for xi in x)


def numel(x: Sequence[Tensor]) -> int:
    """Total number of scalars in the tuple."""
    return sum(xi.numel() for xi in x)


def flatten(x: Sequence[Tensor]) -> Tensor:
    """Concatenate the tuple into one flat vector (for dense linear algebra only)."""
    return torch.cat([xi.reshape(-1) for xi in x])


def unflatten(flat: Tensor, like: Sequence[Tensor]) -> TensorTuple:
    """Inverse of :func:`flatten`: split ``flat`` into tensors shaped like ``like``."""
    if flat.numel() != numel(like):
        raise ValueError(f"Cannot unflatten {flat.numel()} values into {numel(like)} values")
    pieces = torch.split(flat, [t.numel() for t in like])
    return tuple(p.reshape(t.shape) for p, t in zip(pieces, like))


def _check_same_length(x: Sequence[Tensor], y: Sequence[Tensor]) -> None:
    if len(x) != len(y):
        raise ValueError(f"Tensor tuples differ in length: {len(x)} and {len(y)}")


__all__ = [
    "TensorTuple",
    "add",
    "axpy",
    "detach",
    "dot",
    "flatten",
    "norm",
    "numel",
    "scale",
    "sub",
    "unflatten",
    "zeros_like",
]
