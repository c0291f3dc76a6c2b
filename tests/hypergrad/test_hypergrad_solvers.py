"""Linear solvers and power iteration on tuples, against dense numpy/torch linear algebra."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from autobalance.hypergrad import (
    cg_solver,
    estimate_max_eigenvalue,
    exact_solver,
    make_solver,
    neumann_solver,
)
from autobalance.hypergrad.tuples import axpy, dot, flatten, norm, unflatten

SHAPES = ((2, 3), (4,))
N = 10


def spd_matrix(eigenvalues: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    return (q * eigenvalues) @ q.T


def tuple_matvec(a: np.ndarray):
    dense = torch.from_numpy(a)
    calls = []

    def matvec(v: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        calls.append(1)
        return unflatten(dense @ flatten(v), v)

    return matvec, calls


def random_tuple(seed: int) -> tuple[Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES)


@pytest.fixture(scope="module")
def system():
    eigenvalues = np.linspace(0.5, 4.0, N)
    a = spd_matrix(eigenvalues, seed=0)
    b = random_tuple(1)
    x_ref = np.linalg.solve(a, flatten(b).numpy())
    return a, b, x_ref, eigenvalues


def test_tuple_helpers_match_numpy():
    x, y = random_tuple(2), random_tuple(3)
    fx, fy = flatten(x).numpy(), flatten(y).numpy()
    assert float(dot(x, y)) == pytest.approx(float(fx @ fy), rel=1e-12)
    assert float(norm(x)) == pytest.approx(float(np.linalg.norm(fx)), rel=1e-12)
    np.testing.assert_allclose(flatten(axpy(-0.7, x, y)).numpy(), -0.7 * fx + fy, rtol=1e-12)
    assert [t.shape for t in unflatten(flatten(x), x)] == [torch.Size(s) for s in SHAPES]


@pytest.mark.parametrize(
    ("name", "solver", "rtol"),
    [
        ("exact", exact_solver(), 1e-10),
        ("cg", cg_solver(iterations=3 * N, tol=1e-14), 1e-9),
        # κ = 8, s = 1/λ_max: error (1 − 1/8)^400 ≈ 1e-23
        ("neumann", neumann_solver(iterations=400, scale=1 / 4.0), 1e-9),
    ],
)
def test_solver_matches_dense_solve(system, name, solver, rtol):
    a, b, x_ref, _ = system
    matvec, _ = tuple_matvec(a)
    x = solver(matvec, b)
    assert [t.shape for t in x] == [t.shape for t in b], name
    np.testing.assert_allclose(flatten(x).numpy(), x_ref, rtol=rtol, atol=rtol)
    torch_ref = torch.linalg.solve(torch.from_numpy(a), flatten(b))
    np.testing.assert_allclose(flatten(x).numpy(), torch_ref.numpy(), rtol=rtol, atol=rtol)


def test_neumann_partial_sum_by_hand(system):
    a, b, _, _ = system
    matvec, calls = tuple_matvec(a)
    s, fb = 0.2, flatten(b).numpy()
    m = np.eye(N) - s * a
    expected = s * (fb + m @ fb + m @ m @ fb)  # s Σ_{j<3} (I − sA)^j b
    x = neumann_solver(iterations=3, scale=s)(matvec, b)
    np.testing.assert_allclose(flatten(x).numpy(), expected, rtol=1e-12)
    assert len(calls) == 2  # n terms cost n − 1 products
    one_term = neumann_solver(iterations=1, scale=s)(matvec, b)
    np.testing.assert_allclose(flatten(one_term).numpy(), s * fb, rtol=1e-12)


def test_cg_stops_early_and_handles_zero_rhs(system):
    _, b, _, _ = system
    matvec, calls = tuple_matvec(2.0 * np.eye(N))
    x = cg_solver(iterations=50, tol=1e-12)(matvec, b)
    np.testing.assert_allclose(flatten(x).numpy(), flatten(b).numpy() / 2, rtol=1e-12)
    assert len(calls) == 1
    zeros = tuple(torch.zeros_like(t) for t in b)
    assert all(bool((t == 0).all()) for t in cg_solver(5)(matvec, zeros))


def test_cg_after_k_steps_is_krylov_optimum(system):
    # After k steps CG minimises ½xᵀAx − bᵀx over span{b, Ab, ..., A^{k−1}b}.
    a, b, _, _ = system
    matvec, _ = tuple_matvec(a)
    fb = flatten(b).numpy()
    krylov = np.stack([np.linalg.matrix_power(a, j) @ fb for j in range(3)], axis=1)
    coef = np.linalg.solve(krylov.T @ a @ krylov, krylov.T @ fb)
    x = cg_solver(iterations=3, tol=0.0)(matvec, b)
    np.testing.assert_allclose(flatten(x).numpy(), krylov @ coef, rtol=1e-8)


def test_power_iteration_within_one_percent():
    eigenvalues = np.array([9.0, 4.5, 3.0, 2.0, 1.0, 0.5, 0.2, 0.1, 0.1, 0.05])
    matvec, calls = tuple_matvec(spd_matrix(eigenvalues, seed=4))
    gen = torch.Generator().manual_seed(0)
    like = random_tuple(5)
    estimate = estimate_max_eigenvalue(matvec, like, iterations=10, generator=gen)
    true_max = float(np.linalg.eigvalsh(spd_matrix(eigenvalues, seed=4)).max())
    assert estimate == pytest.approx(true_max, rel=1e-2)
    assert estimate <= true_max * (1 + 1e-12)  # the Rayleigh quotient is a lower bound
    assert len(calls) == 10


def test_exact_solver_refuses_large_problems():
    b = (torch.zeros(30, dtype=torch.float64),)
    with pytest.raises(ValueError, match="max_size=20"):
        exact_solver(max_size=20)(lambda v: v, b)


@pytest.mark.parametrize(
    "make",
    [
        lambda: neumann_solver(iterations=0),
        lambda: neumann_solver(iterations=3, scale=0.0),
        lambda: cg_solver(iterations=0),
        lambda: cg_solver(iterations=3, tol=-1.0),
        lambda: exact_solver(max_size=0),
        lambda: make_solver("lbfgs"),
    ],
)
def test_bad_solver_options_raise(make):
    with pytest.raises(ValueError):
        make()


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown method 'lbfgs', expected one of .*neumann"):
        make_solver("lbfgs")
