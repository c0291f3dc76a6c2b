"""Dense exact solver for H x = b: for small problems and tests.

The operator is materialised column by column, H e_k for every basis vector e_k (n
Hessian-vector products), and the dense system is solved by LU with partial pivoting
(``torch.linalg.solve``). Memory is O(n²) and time O(n) products plus O(n³), so the size is
capped. With this solver the implicit hypergradient is the exact implicit-function-theorem
formula of Lorraine et al. 2020 (arXiv 1911.02590), eq. (3).
"""

from __future__ import annotations

import torch

from autobalance.hypergrad.tuples import TensorTuple, flatten, numel, unflatten
from autobalance.typing import MatVec, Solver

DEFAULT_MAX_SIZE = 20_000


def exact_solver(max_size: int = DEFAULT_MAX_SIZE) -> Solver:
    """Return ``solve(matvec, b) = H⁻¹ b`` computed from the dense matrix H.

    H[:, k] = matvec(e_k) for k < n, then x = torch.linalg.solve(H, b). A singular H raises
    ``torch.linalg.LinAlgError`` (use damping).

    Args:
        max_size: largest number n of unknowns accepted; a larger ``b`` raises ValueError.
    """
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise ValueError(f"max_size must be an integer >= 1, got {max_size!r}")

    def solve(matvec: MatVec, b: TensorTuple) -> TensorTuple:
        n = numel(b)
        if n > max_size:
            raise ValueError(
                f"The exact solver builds a dense {n}x{n} matrix, but n={n} exceeds "
                f"max_size={max_size}; use method='cg' or 'neumann' for problems this large"
            )
        flat_b = flatten(b)
        basis = torch.eye(n, dtype=flat_b.dtype, device=flat_b.device)
        columns = [flatten(matvec(unflatten(basis[k], b))) for k in range(n)]
        dense = torch.stack(columns, dim=1)  # dense[:, k] = H e_k
        return unflatten(torch.linalg.solve(dense, flat_b), b)

    return solve


__all__ = ["DEFAULT_MAX_SIZE", "exact_solver"]
