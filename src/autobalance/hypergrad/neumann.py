"""Truncated Neumann-series solver for H x = b.

For a symmetric H with eigenvalues in (0, 2/s),

    H⁻¹ = s Σ_{j≥0} (I − sH)^j,

and truncating the series after n terms leaves an error factor (1 − sλ_min)^n. This is the
inverse-Hessian approximation of Lorraine, Vicol & Duvenaud, "Optimizing Millions of
Hyperparameters by Implicit Differentiation", AISTATS 2020 (arXiv 1911.02590), Algorithm 3.
Their algorithm returns the bare sum (the factor s is folded into the hyper learning rate);
here the sum is multiplied by s so that the result approximates H⁻¹b itself. With s = 1 both
coincide.

The series diverges as soon as s·λ_max > 2 (or H has a negative eigenvalue). A fixed s = 1 is
unsafe on real networks whose Hessian has eigenvalues above 2; pick s ≤ 1/λ̂ with λ̂ from
:func:`autobalance.hypergrad.estimate_max_eigenvalue`.
"""

from __future__ import annotations

from autobalance.hypergrad.tuples import TensorTuple, add, axpy
from autobalance.hypergrad.tuples import scale as scale_tuple
from autobalance.typing import MatVec, Solver


def neumann_solver(iterations: int = 5, scale: float = 1.0) -> Solver:
    """Return ``solve(matvec, b) ≈ H⁻¹ b`` by ``iterations`` terms of the Neumann series.

    ``solve`` computes x = s Σ_{j<n} (I − sH)^j b with n = ``iterations`` terms, i.e. n − 1
    Hessian-vector products (n = 1 is the identity approximation x = s·b). Reference:
    Lorraine et al. 2020 (arXiv 1911.02590), Algorithm 3.

    Args:
        iterations: number of terms n ≥ 1 of the truncated series.
        scale: step s > 0; the series converges iff 0 < s·λ_i(H) < 2 for every eigenvalue.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"Neumann iterations must be an integer >= 1, got {iterations!r}")
    if not scale > 0:
        raise ValueError(f"Neumann scale must be > 0, got {scale!r}")
    s = float(scale)

    def solve(matvec: MatVec, b: TensorTuple) -> TensorTuple:
        term = tuple(b)  # p_0 = b
        total = term
        for _ in range(iterations - 1):
            # p_{j+1} = (I − sH) p_j = p_j − s·H p_j
            term = axpy(-s, matvec(term), term)
            total = add(total, term)
        # H^{-1} ≈ s Σ_j (I − sH)^j
        return scale_tuple(s, total)

    return solve


__all__ = ["neumann_solver"]
