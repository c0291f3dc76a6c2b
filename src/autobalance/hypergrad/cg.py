"""Conjugate-gradient solver for H x = b with H symmetric positive definite.

Hestenes & Stiefel, "Methods of Conjugate Gradients for Solving Linear Systems", J. Res. NBS
1952. Used for implicit hypergradients by Rajeswaran et al., "Meta-Learning with Implicit
Gradients", NeurIPS 2019 (arXiv 1909.04630). In exact arithmetic CG solves an n-dimensional SPD
system in at most n steps, and after k steps its error in the H-norm is at most
2·((√κ − 1)/(√κ + 1))^k times the initial one, κ the condition number. A damping term
(H + δI) is part of the matvec, so it is handled like any other SPD operator.
"""

from __future__ import annotations

from autobalance.hypergrad.tuples import TensorTuple, axpy, dot, zeros_like
from autobalance.typing import MatVec, Solver


def cg_solver(iterations: int = 10, tol: float = 1e-10) -> Solver:
    """Return ``solve(matvec, b) ≈ H⁻¹ b`` by at most ``iterations`` conjugate-gradient steps.

    From x₀ = 0, r₀ = p₀ = b, each step does (Hestenes & Stiefel 1952)::

        a_k = ⟨r_k, r_k⟩ / ⟨p_k, H p_k⟩
        x_{k+1} = x_k + a_k p_k,   r_{k+1} = r_k − a_k H p_k
        p_{k+1} = r_{k+1} + (⟨r_{k+1}, r_{k+1}⟩ / ⟨r_k, r_k⟩) p_k

    It stops early once ‖r‖ ≤ tol·‖b‖, and also at the first direction of non-positive
    curvature ⟨p, Hp⟩ ≤ 0 (H is not positive definite there: add damping), returning the current
    iterate, as truncated-Newton CG does (Steihaug 1983).

    Args:
        iterations: maximum number of steps (Hessian-vector products), ≥ 1.
        tol: relative residual tolerance ≥ 0 for the early stop.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"CG iterations must be an integer >= 1, got {iterations!r}")
    if not tol >= 0:
        raise ValueError(f"CG tolerance must be >= 0, got {tol!r}")

    def solve(matvec: MatVec, b: TensorTuple) -> TensorTuple:
        x = zeros_like(b)
        r = tuple(b)
        p = r
        rr = dot(r, r)
        if float(rr) == 0.0:
            return x
        stop = (tol**2) * float(rr)  # ‖r‖² ≤ tol²‖b‖²
        for _ in range(iterations):
            hp = matvec(p)
            curvature = dot(p, hp)
            if float(curvature) <= 0.0:
                break  # non-positive curvature: keep the last iterate (NaN propagates on)
            a = rr / curvature
            x = axpy(a, p, x)
            r = axpy(-a, hp, r)
            rr_next = dot(r, r)
            if float(rr_next) <= stop:
                break
            p = axpy(rr_next / rr, p, r)
            rr = rr_next
        return x

    return solve


__all__ = ["cg_solver"]
