"""Hessian-vector products: reverse-over-reverse, forward-over-reverse and the dense Hessian."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from autobalance.hypergrad import hvp_forward_over_reverse, make_hvp, mixed_vjp
from autobalance.hypergrad.tuples import flatten

DT = torch.float64
GEN = torch.Generator().manual_seed(0)
X = torch.randn(7, 3, generator=GEN, dtype=DT)
W0 = torch.randn(3, 2, generator=GEN, dtype=DT)
B0 = torch.randn(2, generator=GEN, dtype=DT)
A0 = torch.randn(2, generator=GEN, dtype=DT)
V = (torch.randn(3, 2, generator=GEN, dtype=DT), torch.randn(2, generator=GEN, dtype=DT))


def loss(params: tuple[Tensor, ...], alpha: Tensor = A0) -> Tensor:
    """A non-quadratic loss: Σ tanh(xW + b + α)² + ‖W‖⁴₄ + Σ exp(α)·b²."""
    w, b = params
    return (
        torch.tanh(X @ w + b + alpha).square().sum() + w.pow(4).sum() + (alpha.exp() * b**2).sum()
    )


def flat_loss(z: Tensor, alpha: Tensor) -> Tensor:
    return loss((z[:6].reshape(3, 2), z[6:]), alpha)


def dense_blocks() -> tuple[np.ndarray, np.ndarray]:
    z = flatten((W0, B0))
    blocks = torch.autograd.functional.hessian(flat_loss, (z, A0))
    return blocks[0][0].numpy(), blocks[0][1].numpy()


def reverse_setup(alpha: Tensor) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    params = (W0.clone().requires_grad_(), B0.clone().requires_grad_())
    grads = torch.autograd.grad(loss(params, alpha), params, create_graph=True)
    return params, grads


def test_reverse_over_reverse_matches_dense_hessian():
    h_zz, _ = dense_blocks()
    params, grads = reverse_setup(A0)
    matvec = make_hvp(grads, params, damping=0.25)
    hv = matvec(V)
    expected = (h_zz + 0.25 * np.eye(8)) @ flatten(V).numpy()
    np.testing.assert_allclose(flatten(hv).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(flatten(matvec(V)).numpy(), expected, rtol=1e-12)  # graph kept


# torch's first forward-mode call loads jvp decompositions through torch.jit.script, which torch
# itself flags as deprecated; the warning is torch-internal.
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_forward_over_reverse_matches_reverse_over_reverse():
    params, grads = reverse_setup(A0)
    reverse = make_hvp(grads, params)(V)
    forward = hvp_forward_over_reverse(loss, (W0, B0), V)
    assert [t.shape for t in forward] == [W0.shape, B0.shape]
    np.testing.assert_allclose(flatten(forward).numpy(), flatten(reverse).numpy(), rtol=1e-12)
    h_zz, _ = dense_blocks()
    np.testing.assert_allclose(flatten(forward).numpy(), h_zz @ flatten(V).numpy(), rtol=1e-12)


def test_mixed_product_matches_dense_block_and_zeros_for_unused():
    _, h_za = dense_blocks()
    alpha = A0.clone().requires_grad_()
    unused = torch.zeros(4, dtype=DT, requires_grad=True)
    _, grads = reverse_setup(alpha)
    mixed = mixed_vjp(grads, (alpha, unused), V)
    np.testing.assert_allclose(mixed[0].numpy(), h_za.T @ flatten(V).numpy(), rtol=1e-12)
    assert torch.equal(mixed[1], torch.zeros(4, dtype=DT))


def test_linear_loss_has_zero_hessian():
    w = torch.ones(3, dtype=DT, requires_grad=True)
    (grad,) = torch.autograd.grad((X @ w).sum(), (w,), create_graph=True)
    hv = make_hvp((grad,), (w,))((torch.ones(3, dtype=DT),))
    assert torch.equal(hv[0], torch.zeros(3, dtype=DT))


def test_mismatched_lengths_raise():
    params, grads = reverse_setup(A0)
    with pytest.raises(ValueError, match="gradients for"):
        make_hvp(grads[:1], params)
    with pytest.raises(ValueError, match="tangents"):
        hvp_forward_over_reverse(loss, (W0, B0), V[:1])
