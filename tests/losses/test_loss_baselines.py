"""Baselines against hand formulas: LA, CDT, VS, focal, LDAM, DRW, balanced CE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import log_softmax

from autobalance.losses import (
    CDTLoss,
    CrossEntropy,
    DRWCrossEntropy,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    VSLoss,
    balanced_class_weights,
    effective_number_weights,
    ldam_margins,
    make_loss,
)

COUNTS = np.array([500.0, 120.0, 40.0, 9.0, 3.0])
K = len(COUNTS)
N = 11


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    logits = 3 * torch.randn(N, K, generator=gen, dtype=torch.float64)
    targets = torch.randint(0, K, (N,), generator=gen)
    return logits, targets


# Loss parameters are stored in the default dtype (float32): compare at float32 precision.
RTOL = 1e-6


def _np_ce(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -log_softmax(z, axis=1)[np.arange(len(y)), y]


def test_la_matches_formula(batch) -> None:
    logits, targets = batch
    x, y = logits.numpy(), targets.numpy()
    prior = COUNTS / COUNTS.sum()
    for tau in (1.0, 0.5):
        ref = _np_ce(x + tau * np.log(prior), y)
        loss = LogitAdjustedLoss(COUNTS, tau=tau, reduction="none").double()
        np.testing.assert_allclose(loss(logits, targets).numpy(), ref, rtol=RTOL)


def test_cdt_matches_formula(batch) -> None:
    logits, targets = batch
    x, y = logits.numpy(), targets.numpy()
    ref = _np_ce(x * (COUNTS / COUNTS.max()) ** 0.2, y)
    loss = CDTLoss(COUNTS, reduction="none").double()  # γ = 0.2 default
    np.testing.assert_allclose(loss(logits, targets).numpy(), ref, rtol=RTOL)


def test_vs_matches_formula(batch) -> None:
    logits, targets = batch
    x, y = logits.numpy(), targets.numpy()
    scale = (COUNTS / COUNTS.max()) ** 0.2
    ref = _np_ce(x * scale + 1.2 * np.log(COUNTS / COUNTS.sum()), y)
    loss = VSLoss(COUNTS).double()  # γ = 0.2, τ = 1.2 defaults
    np.testing.assert_allclose(loss(logits, targets).item(), ref.mean(), rtol=RTOL)


def test_balanced_weights_and_weighted_ce(batch) -> None:
    logits, targets = batch
    w = balanced_class_weights(COUNTS).numpy()
    np.testing.assert_allclose(w, COUNTS.sum() / (K * COUNTS))
    np.testing.assert_allclose((COUNTS / COUNTS.sum() * w).sum(), 1.0)
    loss = make_loss("balanced_ce", class_counts=COUNTS, reduction="sum").double()
    ref = (w[targets.numpy()] * _np_ce(logits.numpy(), targets.numpy())).sum()
    np.testing.assert_allclose(loss(logits, targets).item(), ref, rtol=RTOL)


def test_plain_ce(batch) -> None:
    logits, targets = batch
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(
            CrossEntropy(reduction=reduction)(logits, targets),
            F.cross_entropy(logits, targets, reduction=reduction),
        )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_focal_gamma_zero_is_cross_entropy(batch, reduction: str) -> None:
    logits, targets = batch
    got = FocalLoss(gamma=0.0, reduction=reduction)(logits, targets)
    torch.testing.assert_close(got, F.cross_entropy(logits, targets, reduction=reduction))


def test_focal_matches_formula(batch) -> None:
    logits, targets = batch
    x, y = logits.numpy(), targets.numpy()
    p = np.exp(log_softmax(x, axis=1))[np.arange(N), y]
    alpha = np.linspace(0.5, 2.0, K)
    for gamma in (2.0, 0.5):
        ref = -alpha[y] * (1 - p) ** gamma * np.log(p)
        loss = FocalLoss(gamma=gamma, weight=torch.tensor(alpha), reduction="none").double()
        np.testing.assert_allclose(loss(logits, targets).numpy(), ref, rtol=1e-9)


def test_ldam_margins() -> None:
    m = ldam_margins(COUNTS).numpy()
    np.testing.assert_allclose(m.max(), 0.5)
    np.testing.assert_allclose(m * COUNTS**0.25, np.full(K, m[0] * COUNTS[0] ** 0.25))
    np.testing.assert_allclose(m, 0.5 * COUNTS.min() ** 0.25 / COUNTS**0.25)
    np.testing.assert_allclose(ldam_margins(COUNTS, max_m=1.0).numpy().max(), 1.0)


def test_ldam_loss_matches_formula(batch) -> None:
    logits, targets = batch
    x, y = logits.numpy().copy(), targets.numpy()
    m = 0.5 * COUNTS.min() ** 0.25 / COUNTS**0.25
    x[np.arange(N), y] -= m[y]
    ref = _np_ce(30.0 * x, y)
    loss = LDAMLoss(COUNTS, reduction="none").double()
    np.testing.assert_allclose(loss(logits, targets).numpy(), ref, rtol=RTOL)
    w = np.linspace(1.0, 3.0, K)
    weighted = LDAMLoss(COUNTS, weight=torch.tensor(w)).double()
    expected = (w[y] * ref).sum() / w[y].sum()  # weighted mean, as F.cross_entropy(weight=…)
    np.testing.assert_allclose(weighted(logits, targets).item(), expected, rtol=RTOL)


def test_effective_number_weights() -> None:
    beta = 0.9999
    raw = (1 - beta) / (1 - beta**COUNTS)
    np.testing.assert_allclose(
        effective_number_weights(COUNTS, beta).numpy(), raw / raw.sum() * K, rtol=1e-10
    )
    np.testing.assert_allclose(effective_number_weights(COUNTS, 0.0).numpy(), np.ones(K))


@pytest.mark.parametrize("name", ["ce_drw", "ldam_drw"])
def test_drw_switches_weights_at_drw_epoch(batch, name: str) -> None:
    logits, targets = batch
    y = targets.numpy()
    loss = make_loss(name, class_counts=COUNTS, drw_epoch=3, reduction="none").double()
    unweighted = loss(logits, targets).clone()
    raw = (1 - 0.9999) / (1 - 0.9999**COUNTS)
    w = raw / raw.sum() * K
    for epoch, expected in ((0, np.ones(K)), (2, np.ones(K)), (3, w), (10, w)):
        loss.set_epoch(epoch)
        np.testing.assert_allclose(
            loss(logits, targets).numpy(), expected[y] * unweighted.numpy(), rtol=RTOL
        )
    loss.reduction = "mean"
    expected_mean = (w[y] * unweighted.numpy()).sum() / w[y].sum()
    np.testing.assert_allclose(loss(logits, targets).item(), expected_mean, rtol=RTOL)
    with pytest.raises(ValueError, match="epoch"):
        loss.set_epoch(-1)


def test_ce_drw_plain_mean_option(batch) -> None:
    logits, targets = batch
    y = targets.numpy()
    loss = DRWCrossEntropy(COUNTS, drw_epoch=0, weighted_mean=False).double()
    w = effective_number_weights(COUNTS).numpy()
    ref = (w[y] * _np_ce(logits.numpy(), y)).mean()
    np.testing.assert_allclose(loss(logits, targets).item(), ref, rtol=RTOL)


def test_ldam_rejects_weight_with_drw() -> None:
    with pytest.raises(ValueError, match="not both"):
        LDAMLoss(COUNTS, weight=torch.ones(K), drw_epoch=2)


def test_counts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="strictly positive"):
        LogitAdjustedLoss([3, 0, 2])
    with pytest.raises(ValueError, match=r"shape \(K,\)"):
        CDTLoss([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1.0)
