"""Implicit hypergradients on an L2-regularised multinomial logistic regression (float64).

The inner problem is strongly convex (λ‖θ‖², λ = 0.05) and is solved by damped Newton to a
gradient norm below 1e-12. The reference hypergradient is computed independently: dense Hessian
and mixed Jacobian by ``torch.autograd.functional.hessian`` on a flat parametrisation, then a
scipy solve; it is checked in turn against central finite differences of the re-solved problem.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import Tensor

from autobalance.hypergrad import (
    NonFiniteHypergradient,
    hypergradient_is_finite,
    implicit_hypergradient,
    neumann_solver,
)

D, K, LAM = 5, 3, 0.05
N_THETA = D * K + K
DT = torch.float64
ALPHA0 = np.array([0.3, -0.1, -0.4, -0.2, 0.1, 0.5])  # (l, ω): logit offsets, log-weights


def make_split(n: int, priors: list[float], gen: torch.Generator) -> tuple[Tensor, Tensor]:
    means = torch.tensor(
        [[1.0, 0.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.5, 0.0], [0.0] * 5], dtype=DT
    )
    y = torch.multinomial(torch.tensor(priors, dtype=DT), n, replacement=True, generator=gen)
    x = means[y] + torch.randn(n, D, generator=gen, dtype=DT)
    return x, y


GEN = torch.Generator().manual_seed(0)
X_TR, Y_TR = make_split(200, [0.6, 0.3, 0.1], GEN)
X_VA, Y_VA = make_split(150, [1 / 3] * 3, GEN)


def per_sample_ce(logits: Tensor, y: Tensor) -> Tensor:
    log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return -log_p.gather(1, y[:, None]).squeeze(1)


def train_loss(w: Tensor, b: Tensor, l: Tensor, log_weight: Tensor) -> Tensor:
    """(1/N) Σ_i exp(ω_{y_i}) · CE(x_i W + b + l, y_i) + λ(‖W‖² + ‖b‖²)."""
    ce = per_sample_ce(X_TR @ w + b + l, Y_TR)
    return (log_weight.exp()[Y_TR] * ce).mean() + LAM * (w.square().sum() + b.square().sum())


def val_loss(w: Tensor, b: Tensor) -> Tensor:
    """Balanced CE: mean over classes of the class-mean CE."""
    ce = per_sample_ce(X_VA @ w + b, Y_VA)
    sums = torch.zeros(K, dtype=DT).index_add(0, Y_VA, ce)
    return (sums / torch.bincount(Y_VA, minlength=K)).mean()


def split_theta(z: Tensor) -> tuple[Tensor, Tensor]:
    return z[: D * K].reshape(D, K), z[D * K :]


def train_flat(z: Tensor, a: Tensor) -> Tensor:
    return train_loss(*split_theta(z), a[:K], a[K:])


def val_flat(z: Tensor) -> Tensor:
    return val_loss(*split_theta(z))


def solve_inner(a: Tensor) -> Tensor:
    """Damped Newton with backtracking (full steps once ‖∇‖ ≤ 1e-6) to ‖∇‖ < 1e-12."""
    z = torch.zeros(N_THETA, dtype=DT)
    for _ in range(60):
        zr = z.clone().requires_grad_()
        (grad,) = torch.autograd.grad(train_flat(zr, a), zr)
        if float(grad.norm()) < 1e-12:
            return z
        hess = torch.autograd.functional.hessian(lambda t: train_flat(t, a), z)
        step = torch.linalg.solve(hess, grad)
        f0, t = float(train_flat(z, a)), 1.0
        # Near the optimum the loss no longer resolves the Armijo decrease in float64 (one
        # perturbed α stalled at ‖∇‖ = 7e-10): take the full Newton step there.
        while float(grad.norm()) > 1e-6 and (
            float(train_flat(z - t * step, a)) > f0 - 0.25 * t * float(grad @ step)
        ):
            t /= 2
        z = z - t * step
    raise AssertionError("Newton did not converge")


def reference_hypergradient(z: Tensor, a: Tensor, damping: float = 0.0) -> np.ndarray:
    """−(∂²F/∂α∂θ)(∂²F/∂θ² + δI)⁻¹ ∇_θ G from dense matrices (val loss has no direct term)."""
    blocks = torch.autograd.functional.hessian(train_flat, (z, a))
    h_zz, h_za = blocks[0][0].numpy(), blocks[0][1].numpy()
    zr = z.clone().requires_grad_()
    (g_z,) = torch.autograd.grad(val_flat(zr), zr)
    v = scipy.linalg.solve(h_zz + damping * np.eye(N_THETA), g_z.numpy(), assume_a="pos")
    return -h_za.T @ v


@pytest.fixture(scope="module")
def problem():
    a = torch.tensor(ALPHA0, dtype=DT)
    z = solve_inner(a)
    h_zz = torch.autograd.functional.hessian(lambda t: train_flat(t, a), z).numpy()
    eig = np.linalg.eigvalsh(h_zz)
    return {"a": a, "z": z, "ref": reference_hypergradient(z, a), "eig": eig}


def leaves(problem) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    w, b = (t.clone().requires_grad_() for t in split_theta(problem["z"]))
    l, log_weight = (t.clone().requires_grad_() for t in (problem["a"][:K], problem["a"][K:]))
    return (w, b), (l, log_weight)


def run(problem, **kwargs) -> np.ndarray:
    (w, b), (l, log_weight) = leaves(problem)
    hg = implicit_hypergradient(
        train_loss(w, b, l, log_weight), val_loss(w, b), (w, b), (l, log_weight), **kwargs
    )
    assert [t.shape for t in hg] == [l.shape, log_weight.shape]
    assert not any(t.requires_grad for t in hg)
    return torch.cat(hg).numpy()


def cosine(x: np.ndarray, y: np.ndarray) -> float:
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def rel_err(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.linalg.norm(x - y) / np.linalg.norm(y))


def test_reference_matches_finite_differences_of_resolved_problem(problem):
    eps, fd = 1e-4, np.zeros(2 * K)
    for i in range(2 * K):
        e = torch.zeros(2 * K, dtype=DT)
        e[i] = eps
        plus = float(val_flat(solve_inner(problem["a"] + e)))
        minus = float(val_flat(solve_inner(problem["a"] - e)))
        fd[i] = (plus - minus) / (2 * eps)
    assert np.linalg.norm(fd) > 1e-2  # a non-trivial hypergradient
    assert rel_err(problem["ref"], fd) < 1e-6
    assert rel_err(run(problem, method="exact"), fd) < 1e-6


def test_exact_method_matches_dense_ift(problem):
    hg = run(problem, method="exact")
    assert rel_err(hg, problem["ref"]) < 1e-6
    assert cosine(hg, problem["ref"]) > 0.99


def test_cg_matches_dense_ift(problem):
    hg = run(problem, method="cg", iterations=2 * N_THETA)
    assert cosine(hg, problem["ref"]) >= 0.99
    assert rel_err(hg, problem["ref"]) < 1e-6


def test_neumann_with_safe_scale_matches_dense_ift(problem):
    lam_min, lam_max = problem["eig"][0], problem["eig"][-1]
    assert lam_min >= 2 * LAM * (1 - 1e-9)  # strongly convex by the L2 term
    # error factor (1 − λ_min/λ_max)^n ≤ 1e-6
    n = math.ceil(math.log(1e-6) / math.log(1 - lam_min / lam_max))
    assert n < 2000
    hg = run(problem, method="neumann", iterations=n, scale=1 / lam_max)
    assert cosine(hg, problem["ref"]) >= 0.99
    assert rel_err(hg, problem["ref"]) < 1e-4


def test_damping_is_added_to_the_hessian(problem):
    ref = reference_hypergradient(problem["z"], problem["a"], damping=0.5)
    assert rel_err(ref, problem["ref"]) > 1e-2  # damping changes the answer
    assert rel_err(run(problem, method="exact", damping=0.5), ref) < 1e-6
    assert rel_err(run(problem, method="cg", iterations=40, damping=0.5), ref) < 1e-6


def test_custom_solver_and_precomputed_train_grads(problem):
    (w, b), (l, log_weight) = leaves(problem)
    grads = torch.autograd.grad(train_loss(w, b, l, log_weight), (w, b), create_graph=True)
    calls = []

    def solver(matvec, rhs):
        calls.append(1)
        return neumann_solver(iterations=1000, scale=1 / problem["eig"][-1])(matvec, rhs)

    hg = implicit_hypergradient(
        None, val_loss(w, b), (w, b), (l, log_weight), solver=solver, train_grads=grads
    )
    assert calls == [1]
    assert rel_err(torch.cat(hg).numpy(), problem["ref"]) < 1e-4
    # the SGD step's graph is still usable afterwards
    torch.autograd.grad(sum(g.sum() for g in grads), (l, log_weight))


def test_direct_term_is_added(problem):
    (w, b), (l, log_weight) = leaves(problem)
    weights = log_weight.exp()  # one node shared by both losses, as a search space would do
    ce = per_sample_ce(X_TR @ w + b + l, Y_TR)
    train = (weights[Y_TR] * ce).mean() + LAM * (w.square().sum() + b.square().sum())
    c = torch.tensor([0.7, -1.3, 2.0], dtype=DT)
    val = val_loss(w, b) + 0.3 * l.square().sum() + (c * weights).sum()
    hg = implicit_hypergradient(train, val, (w, b), (l, log_weight), method="exact")
    direct = np.concatenate([0.6 * ALPHA0[:K], c.numpy() * np.exp(ALPHA0[K:])])
    np.testing.assert_allclose(torch.cat(hg).numpy(), problem["ref"] + direct, rtol=1e-8)


def test_unused_hparams_get_zeros(problem):
    (w, b), (l, log_weight) = leaves(problem)
    unused = torch.zeros(2, dtype=DT, requires_grad=True)
    val_only = torch.ones(4, dtype=DT, requires_grad=True)
    c = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=DT)
    hg = implicit_hypergradient(
        train_loss(w, b, l, log_weight),
        val_loss(w, b) + (c * val_only).sum(),
        (w, b),
        (l, log_weight, unused, val_only),
        method="cg",
        iterations=40,
    )
    assert torch.equal(hg[2], torch.zeros(2, dtype=DT))
    np.testing.assert_allclose(hg[3].numpy(), c.numpy(), rtol=1e-12)
    assert rel_err(torch.cat(hg[:2]).numpy(), problem["ref"]) < 1e-6


def test_val_loss_independent_of_params_gives_direct_term_only(problem):
    (w, b), (l, log_weight) = leaves(problem)
    hg = implicit_hypergradient(
        train_loss(w, b, l, log_weight), (2.0 * l).sum(), (w, b), (l, log_weight)
    )
    np.testing.assert_allclose(torch.cat(hg).numpy(), [2.0] * K + [0.0] * K, atol=0)


def test_nan_val_loss_raises_or_returns(problem):
    (w, b), (l, log_weight) = leaves(problem)
    args = (train_loss(w, b, l, log_weight), val_loss(w, b) * float("nan"), (w, b), (l, log_weight))
    with pytest.raises(NonFiniteHypergradient, match="not finite"):
        implicit_hypergradient(*args)
    assert issubclass(NonFiniteHypergradient, FloatingPointError)
    hg = implicit_hypergradient(*args, on_nonfinite="return")
    assert not hypergradient_is_finite(hg)
    assert torch.isnan(torch.cat(hg)).all()


def test_diverging_neumann_series_is_reported(problem):
    with pytest.raises(NonFiniteHypergradient, match="scale"):
        run(problem, method="neumann", iterations=8, scale=1e200)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "lbfgs"}, r"Unknown method 'lbfgs', expected one of \('neumann', 'cg'"),
        ({"on_nonfinite": "ignore"}, "expected one of"),
        ({"iterations": 0}, "iterations"),
        ({"damping": -1.0}, "damping"),
    ],
)
def test_bad_options_raise_value_error(problem, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run(problem, **kwargs)
