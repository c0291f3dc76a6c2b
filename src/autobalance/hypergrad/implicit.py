"""Implicit hypergradients by the implicit function theorem (IFT).

At a stationary point θ*(α) of the training loss, ∇_θ L_train(θ*(α), α) = 0, so

    dθ*/dα = −(∂²L_train/∂θ²)⁻¹ ∂²L_train/∂θ∂α,

and the hypergradient of the validation loss is (Lorraine, Vicol & Duvenaud, "Optimizing Millions
of Hyperparameters by Implicit Differentiation", AISTATS 2020, arXiv 1911.02590, eqs. 1–3)

    dL_val/dα = ∂L_val/∂α − (∂²L_train/∂α∂θ) v,   v = (∂²L_train/∂θ² + δI)⁻¹ ∇_θ L_val.

AutoBalance (Li et al., NeurIPS 2021, arXiv 2111.00111) takes its hyper-steps with it. The
linear system is solved by an interchangeable solver ``solve(matvec, b) -> x`` on tuples of
tensors shaped like θ; the damping δ ≥ 0 regularises a Hessian that is not positive definite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from autobalance.hypergrad.cg import cg_solver
from autobalance.hypergrad.exact import exact_solver
from autobalance.hypergrad.finite import NonFiniteHypergradient, hypergradient_is_finite
from autobalance.hypergrad.hvp import make_hvp, mixed_vjp, vjp_or_zeros
from autobalance.hypergrad.neumann import neumann_solver
from autobalance.hypergrad.tuples import TensorTuple, detach, sub
from autobalance.typing import Solver

METHODS: tuple[str, ...] = ("neumann", "cg", "exact")
ON_NONFINITE: tuple[str, ...] = ("raise", "return")
CG_TOLERANCE = 1e-10


def make_solver(method: str, *, iterations: int = 5, scale: float = 1.0) -> Solver:
    """Return the solver named ``method``: one of ``METHODS`` ("neumann", "cg", "exact").

    "neumann": :func:`neumann_solver` (``iterations`` terms, step ``scale``); "cg":
    :func:`cg_solver` (``iterations`` steps, relative tolerance 1e-10); "exact":
    :func:`exact_solver` (dense, small problems only).
    """
    if method == "neumann":
        return neumann_solver(iterations, scale)
    if method == "cg":
        return cg_solver(iterations, CG_TOLERANCE)
    if method == "exact":
        return exact_solver()
    raise ValueError(f"Unknown method {method!r}, expected one of {METHODS}")


def implicit_hypergradient(
    train_loss: Tensor | None,
    val_loss: Tensor,
    params: Sequence[Tensor],
    hparams: Sequence[Tensor],
    *,
    method: str = "neumann",
    iterations: int = 5,
    scale: float = 1.0,
    damping: float = 0.0,
    solver: Solver | None = None,
    train_grads: Sequence[Tensor] | None = None,
    on_nonfinite: str = "raise",
    reduce: Callable[[TensorTuple], TensorTuple] | None = None,
) -> TensorTuple:
    """Return dL_val/dα = ∂L_val/∂α − (∂²L_train/∂α∂θ)(∂²L_train/∂θ² + δI)⁻¹ ∇_θ L_val.

    Implicit-function-theorem hypergradient of Lorraine et al. 2020 (arXiv 1911.02590), eq. (3),
    as used by AutoBalance (Li et al. 2021, arXiv 2111.00111). g = ∇_θ L_train is built once with
    ``create_graph=True``; each Hessian-vector product and the final mixed product are one
    backward pass through it. Hyperparameters that a loss does not use get zero terms.

    Args:
        train_loss: scalar training loss depending on ``params`` and ``hparams``. May be None
            when ``train_grads`` is given (it is ignored then).
        val_loss: scalar validation loss depending on ``params`` and possibly ``hparams``.
        params: θ, the tensors the inner problem is solved for (the Hessian's scope).
        hparams: α, tensors requiring grad.
        method: linear solver, one of ``METHODS``: "neumann" (``iterations`` series terms at
            step ``scale``; safe only if scale·λ_max(H) < 2, see
            :func:`estimate_max_eigenvalue`), "cg" (``iterations`` conjugate-gradient steps) or
            "exact" (dense solve, ≤ 20,000 parameters).
        iterations: Neumann terms or CG steps.
        scale: Neumann step s.
        damping: δ ≥ 0 added to the Hessian.
        solver: any ``solve(matvec, b) -> x``; overrides ``method``/``iterations``/``scale``.
        train_grads: precomputed ∇_θ L_train made with ``create_graph=True`` (e.g. by the SGD
            step), reused instead of differentiating ``train_loss`` again.
        on_nonfinite: "raise" (default) raises :class:`NonFiniteHypergradient` when the
            hypergradient or the solve is not finite; "return" returns the tensors as they are,
            for the caller to check with :func:`hypergradient_is_finite`.
        reduce: combines a tuple across processes (``autobalance.distributed.all_reduce_mean``
            under ``torchrun``); applied to ∇_θ L_val with ∂L_val/∂α, to every Hessian-vector
            product and to the mixed product, so that each process's losses on its share of the
            batches give the hypergradient of their mean.

    Returns:
        A tuple of detached tensors shaped like ``hparams``.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}, expected one of {METHODS}")
    if on_nonfinite not in ON_NONFINITE:
        raise ValueError(f"Unknown on_nonfinite {on_nonfinite!r}, expected one of {ON_NONFINITE}")
    params, hparams = tuple(params), tuple(hparams)
    _check_inputs(params, hparams, val_loss)
    if solver is None:
        solver = make_solver(method, iterations=iterations, scale=scale)

    grads = _train_gradients(train_loss, params, train_grads)
    # b = ∇_θ L_val and the direct term ∂L_val/∂α, in one backward pass.
    val_grads = vjp_or_zeros((val_loss,), params + hparams, (torch.ones_like(val_loss),))
    if reduce is not None:
        val_grads = reduce(detach(val_grads))
    b, direct = detach(val_grads[: len(params)]), detach(val_grads[len(params) :])

    # v = (H + δI)⁻¹ ∇_θ L_val
    hvp = make_hvp(grads, params, damping=damping)
    matvec = hvp if reduce is None else (lambda u: reduce(hvp(u)))
    v = tuple(solver(matvec, b))
    # dL_val/dα = ∂L_val/∂α − (∂²L_train/∂α∂θ) v
    mixed = mixed_vjp(grads, hparams, v)
    if reduce is not None:
        mixed = reduce(mixed)
    hypergradient = sub(direct, mixed)

    if on_nonfinite == "raise" and not (
        hypergradient_is_finite(hypergradient) and hypergradient_is_finite(v)
    ):
        bad = [i for i, t in enumerate(hypergradient) if not bool(torch.isfinite(t).all())]
        raise NonFiniteHypergradient(
            f"Implicit hypergradient is not finite (method={method!r}, iterations={iterations}, "
            f"scale={scale}, damping={damping}; non-finite hparams at indices {bad}, "
            f"solve finite: {hypergradient_is_finite(v)}). A Neumann series diverges when "
            "scale * lambda_max(H) >= 2: lower the scale (see estimate_max_eigenvalue), add "
            "damping, or check the losses for inf/NaN. Pass on_nonfinite='return' to get the "
            "raw tensors."
        )
    return hypergradient


def _check_inputs(params: TensorTuple, hparams: TensorTuple, val_loss: Tensor) -> None:
    if not params:
        raise ValueError("params is empty: pass the tensors θ of the inner problem")
    if not hparams:
        raise ValueError("hparams is empty: pass the hyperparameter tensors α")
    for name, group in (("params", params), ("hparams", hparams)):
        for i, t in enumerate(group):
            if not t.requires_grad:
                raise ValueError(f"{name}[{i}] does not require grad")
    if val_loss.numel() != 1:
        raise ValueError(f"val_loss must be a scalar, got shape {tuple(val_loss.shape)}")


def _train_gradients(
    train_loss: Tensor | None, params: TensorTuple, train_grads: Sequence[Tensor] | None
) -> TensorTuple:
    """g = ∇_θ L_train with its graph (create_graph=True), zeros for unused parameters."""
    if train_grads is not None:
        grads = tuple(train_grads)
        if len(grads) != len(params):
            raise ValueError(f"Got {len(grads)} train_grads for {len(params)} params")
        for i, (g, p) in enumerate(zip(grads, params)):
            if g.shape != p.shape:
                raise ValueError(
                    f"train_grads[{i}] has shape {tuple(g.shape)}, params[{i}] {tuple(p.shape)}"
                )
        return grads
    if train_loss is None:
        raise ValueError("Pass train_loss or train_grads (gradients made with create_graph=True)")
    if train_loss.numel() != 1:
        raise ValueError(f"train_loss must be a scalar, got shape {tuple(train_loss.shape)}")
    if not train_loss.requires_grad:
        return tuple(torch.zeros_like(p) for p in params)
    raw = torch.autograd.grad(train_loss, params, create_graph=True, allow_unused=True)
    return tuple(torch.zeros_like(p) if g is None else g for g, p in zip(raw, params))


__all__ = ["CG_TOLERANCE", "METHODS", "ON_NONFINITE", "implicit_hypergradient", "make_solver"]
