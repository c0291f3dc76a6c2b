"""Implicit hypergradients (IFT) and interchangeable linear solvers.

dL_val/dα = ∂L_val/∂α − (∂²L_train/∂α∂θ)(∂²L_train/∂θ² + δI)⁻¹ ∇_θ L_val
(Lorraine, Vicol & Duvenaud 2020, arXiv 1911.02590). Solvers are ``solve(matvec, b) -> x`` on
tuples of tensors: :func:`neumann_solver`, :func:`cg_solver`, :func:`exact_solver`.
"""

from __future__ import annotations

from autobalance.hypergrad.cg import cg_solver
from autobalance.hypergrad.eigen import estimate_max_eigenvalue
from autobalance.hypergrad.exact import exact_solver
from autobalance.hypergrad.finite import NonFiniteHypergradient, hypergradient_is_finite
from autobalance.hypergrad.hvp import hvp_forward_over_reverse, make_hvp, mixed_vjp
from autobalance.hypergrad.implicit import METHODS, implicit_hypergradient, make_solver
from autobalance.hypergrad.neumann import neumann_solver

__all__ = [
    "METHODS",
    "NonFiniteHypergradient",
    "cg_solver",
    "estimate_max_eigenvalue",
    "exact_solver",
    "hvp_forward_over_reverse",
    "hypergradient_is_finite",
    "implicit_hypergradient",
    "make_hvp",
    "make_solver",
    "mixed_vjp",
    "neumann_solver",
]
