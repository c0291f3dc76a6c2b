"""One battery over every loss the factory builds: shapes, dtypes, reductions, finiteness,
derivatives up to Hessian-vector products at extreme logits, and bad input."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from autobalance.losses import (
    GROUP_LOSS_NAMES,
    LOSS_NAMES,
    loss_options,
    make_loss,
    set_value_checks,
    value_checks_enabled,
)

TABLE = torch.tensor([[60.0, 20.0], [30.0, 9.0], [8.0, 5.0], [2.0, 4.0]])  # (K, G) counts
K, G, N = 4, 2, 12
DTYPES = (torch.float32, torch.float64)
# Losses whose "mean" divides by Σ w_{y_i} (the F.cross_entropy(weight=…) convention).
WEIGHTED_MEAN = {"ldam", "ldam_drw", "ce_drw"}


def _reductions(name: str) -> tuple[str, ...]:
    return ("mean", "sum") if name == "ce_deo" else ("mean", "sum", "none")


def _build(name: str, dtype: torch.dtype, **options) -> torch.nn.Module:
    if "drw_epoch" in loss_options(name):
        options.setdefault("drw_epoch", 0)  # DRW weights on, so they are exercised
    return make_loss(name, group_counts=TABLE, **options).to(dtype)


def _batch(dtype: torch.dtype, scale: float = 1.0, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    logits = (scale * torch.randn(N, K, generator=gen)).to(dtype)
    targets = torch.arange(N) % K  # every class present
    groups = (torch.arange(N) // K) % G  # every (class, group) cell present
    return logits, targets, groups


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_shapes_dtypes_reductions_backward(name: str, dtype: torch.dtype) -> None:
    base, targets, groups = _batch(dtype)
    values = {}
    for reduction in _reductions(name):
        loss = _build(name, dtype, reduction=reduction).eval()
        logits = base.clone().requires_grad_()
        out = loss(logits, targets, groups)
        assert out.dtype == dtype
        assert out.shape == ((N,) if reduction == "none" else ())
        assert bool(torch.isfinite(out).all())
        out.sum().backward()
        assert logits.grad is not None and logits.grad.shape == (N, K)
        assert bool(torch.isfinite(logits.grad).all()) and bool(logits.grad.abs().sum() > 0)
        values[reduction] = out.detach()
    if "none" in values:
        torch.testing.assert_close(values["sum"], values["none"].sum())
        if name not in WEIGHTED_MEAN:
            torch.testing.assert_close(values["mean"], values["none"].mean())
    else:
        torch.testing.assert_close(values["mean"], values["sum"])


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_gradcheck_wrt_logits(name: str) -> None:
    logits, targets, groups = _batch(torch.float64, seed=1)
    loss = _build(name, torch.float64, reduction="sum").eval()
    assert gradcheck(lambda x: loss(x, targets, groups), (logits.requires_grad_(),))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_finite_loss_gradient_and_hvp_at_extreme_logits(name: str, dtype: torch.dtype) -> None:
    logits, targets, groups = _batch(dtype)
    logits = 100.0 * torch.sign(logits)  # logits of ±100
    loss = _build(name, dtype).eval()
    value = loss(logits, targets, groups)
    grad = torch.autograd.grad(loss(logits.requires_grad_(), targets, groups), logits)[0]
    v = torch.randn(N, K, generator=torch.Generator().manual_seed(2)).to(dtype)
    _, hv = torch.autograd.functional.hvp(lambda x: loss(x, targets, groups), logits.detach(), v)
    for t in (value, grad, hv):
        assert bool(torch.isfinite(t).all())


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_bad_input(name: str) -> None:
    loss = _build(name, torch.float32)
    logits, targets, groups = _batch(torch.float32)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 4\)"):
        loss(logits, targets + 1, groups)
    with pytest.raises(ValueError, match="targets must lie"):
        loss(logits, targets - 1, groups)
    with pytest.raises(ValueError, match=r"logits must have shape \(N, K\)"):
        loss(logits[0], targets[:1], groups[:1])
    with pytest.raises(ValueError, match="targets must have shape"):
        loss(logits, targets[:-1], groups)
    with pytest.raises(ValueError, match="integer"):
        loss(logits, targets.float(), groups)
    bad = logits.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        loss(bad, targets, groups)
    with pytest.raises(ValueError, match="Unknown reduction 'avg', expected one of"):
        _build(name, torch.float32, reduction="avg")
    if name in GROUP_LOSS_NAMES:
        with pytest.raises(ValueError, match="groups"):
            loss(logits, targets)
        with pytest.raises(ValueError, match="group ids must lie"):
            loss(logits, targets, groups - 1)


def test_value_checks_can_be_switched_off() -> None:
    loss = make_loss("la", class_counts=[5, 3])
    logits = torch.tensor([[float("nan"), 0.0]])
    previous = set_value_checks(False)
    try:
        assert not value_checks_enabled()
        assert torch.isnan(loss(logits, torch.tensor([0])))
    finally:
        set_value_checks(previous)
    assert value_checks_enabled()
    with pytest.raises(ValueError, match="NaN"):
        loss(logits, torch.tensor([0]))
