"""Largest Hessian eigenvalue by power iteration, to choose a safe Neumann step.

The Neumann series s Σ_j (I − sH)^j converges iff 0 < sλ_i < 2 for all eigenvalues λ_i of H.
On real networks λ_max exceeds 2 (CIFAR ResNet-8 does), so the fixed step s = 1 of the original
implementation diverges. Power iteration (von Mises 1929; Golub & Van Loan, Matrix Computations,
§7.3) estimates λ_max from a few Hessian-vector products. For a symmetric H its Rayleigh
quotient never exceeds λ_max, so it is a lower bound: s = 1/λ̂ is safe as long as λ̂ > λ_max/2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from autobalance.hypergrad.tuples import dot, norm
from autobalance.hypergrad.tuples import scale as scale_tuple
from autobalance.typing import MatVec


def estimate_max_eigenvalue(
    matvec: MatVec,
    like: Sequence[Tensor],
    iterations: int = 10,
    generator: torch.Generator | None = None,
) -> float:
    """Estimate the dominant eigenvalue of a symmetric operator by power iteration.

    From a random unit v₀ shaped like ``like``: w = H v_k, λ_k = ⟨v_k, w⟩ (Rayleigh quotient),
    v_{k+1} = w/‖w‖. The error of λ_k decays like (λ₂/λ₁)^{2k}. For an indefinite H this is the
    eigenvalue of largest magnitude (it may be negative); for a Neumann step use
    ``scale = 1 / abs(estimate)``. Reference: Golub & Van Loan, Matrix Computations, §7.3.

    Args:
        matvec: v ↦ H v on tuples of tensors (e.g. :func:`make_hvp`).
        like: tensors giving the shapes, dtypes and devices of v (e.g. the parameters).
        iterations: number of matvecs, ≥ 1.
        generator: random generator for v₀ (on the device of ``like``), for reproducibility.
    """
    v = tuple(
        torch.randn(t.shape, generator=generator, dtype=t.dtype, device=t.device) for t in like
    )
    return power_iteration(matvec, v, iterations)[0]


def power_iteration(
    matvec: MatVec, start: Sequence[Tensor], iterations: int
) -> tuple[float, tuple[Tensor, ...]]:
    """Power iteration from ``start``: (Rayleigh quotient λ_k, unit vector v_k).

    λ_k = ⟨v_k, H v_k⟩ with v_{k+1} = H v_k / ‖H v_k‖. Warm-starting from the previous
    estimate's vector, when H changes slowly (the search's Hessian between epochs), needs far
    fewer matvecs than a random start. Reference: Golub & Van Loan, Matrix Computations, §7.3.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"Power iterations must be an integer >= 1, got {iterations!r}")
    v = tuple(t.detach() for t in start)
    v = scale_tuple(1.0 / norm(v), v)
    estimate = 0.0
    for _ in range(iterations):
        w = matvec(v)
        estimate = float(dot(v, w))  # Rayleigh quotient ⟨v, Hv⟩ with ‖v‖ = 1
        w_norm = float(norm(w))
        if w_norm == 0.0:
            return 0.0, v  # v lies in the null space: H v = 0
        v = scale_tuple(1.0 / w_norm, tuple(t.detach() for t in w))
    return estimate, v


__all__ = ["estimate_max_eigenvalue", "power_iteration"]
