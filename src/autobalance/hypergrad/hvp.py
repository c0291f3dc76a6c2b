"""Hessian-vector products on tuples of tensors, without forming the Hessian.

Reverse-over-reverse (Pearlmutter, "Fast Exact Multiplication by the Hessian", Neural Computation
1994): with g = ∇_θ L built with ``create_graph=True``, H v = ∇_θ ⟨g, v⟩ and the mixed product
(∂²L/∂α∂θ) v = ∇_α ⟨g, v⟩, one backward pass each. The graph of g is kept, so one g serves every
product of a linear solve. Forward-over-reverse (a JVP of the gradient, ``torch.func``) is the
alternative :func:`hvp_forward_over_reverse`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from autobalance.hypergrad.tuples import TensorTuple, axpy, detach
from autobalance.typing import MatVec


def vjp_or_zeros(
    outputs: Sequence[Tensor], inputs: Sequence[Tensor], cotangents: Sequence[Tensor]
) -> TensorTuple:
    """Return Σ_i ⟨cotangents_i, ∂outputs_i/∂inputs⟩, with zeros for inputs nothing depends on.

    Outputs that do not require grad (constant in every input) contribute nothing. The graph is
    retained so that the same outputs can be differentiated again.
    """
    if len(outputs) != len(cotangents):
        raise ValueError(f"Got {len(outputs)} outputs but {len(cotangents)} cotangents")
    pairs = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
    inputs = tuple(inputs)
    if not pairs:
        return tuple(torch.zeros_like(x) for x in inputs)
    grads = torch.autograd.grad(
        [o for o, _ in pairs],
        inputs,
        grad_outputs=[c.detach() for _, c in pairs],
        retain_graph=True,
        allow_unused=True,
    )
    return tuple(torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs))


def make_hvp(
    train_grads: Sequence[Tensor], params: Sequence[Tensor], *, damping: float = 0.0
) -> MatVec:
    """Return the matvec v ↦ (H + δI) v with H = ∂²L/∂θ², from g = ∇_θ L (create_graph=True).

    (H + δI) v = ∇_θ ⟨g, v⟩ + δ v (Pearlmutter 1994), reverse-over-reverse. Products are
    detached: the hypergradient is not differentiated further.
    """
    if len(train_grads) != len(params):
        raise ValueError(f"Got {len(train_grads)} gradients for {len(params)} parameters")
    if not damping >= 0:
        raise ValueError(f"damping must be >= 0, got {damping!r}")
    grads, inputs, delta = tuple(train_grads), tuple(params), float(damping)

    def matvec(v: TensorTuple) -> TensorTuple:
        hv = detach(vjp_or_zeros(grads, inputs, v))  # H v = ∇_θ ⟨g, v⟩
        return axpy(delta, v, hv) if delta else hv

    return matvec


def mixed_vjp(
    train_grads: Sequence[Tensor], hparams: Sequence[Tensor], v: Sequence[Tensor]
) -> TensorTuple:
    """Return the mixed second-derivative product (∂²L/∂α∂θ) v = ∇_α ⟨∇_θ L, v⟩ (detached)."""
    return detach(vjp_or_zeros(tuple(train_grads), tuple(hparams), tuple(v)))


def hvp_forward_over_reverse(
    loss_fn: Callable[[TensorTuple], Tensor], params: Sequence[Tensor], v: Sequence[Tensor]
) -> TensorTuple:
    """Return H v with H = ∂²loss_fn/∂θ² at θ = ``params``, by forward-over-reverse.

    H v = d/dt ∇loss_fn(θ + t v)|_{t=0}, a JVP of the gradient (``torch.func.jvp`` of
    ``torch.func.grad``); one forward-mode pass over the backward graph instead of a second
    reverse pass (Pearlmutter 1994). ``loss_fn`` maps a tuple shaped like ``params`` to a
    scalar and must be written functionally (no in-place updates of captured state).
    """
    primals, tangents = detach(params), detach(v)
    if len(primals) != len(tangents):
        raise ValueError(f"Got {len(tangents)} tangents for {len(primals)} parameters")
    outputs = torch.func.jvp(torch.func.grad(loss_fn), (primals,), (tangents,))
    return tuple(outputs[1])  # (∇loss_fn(θ), H v)


__all__ = ["hvp_forward_over_reverse", "make_hvp", "mixed_vjp", "vjp_or_zeros"]
