"""(Class, group) losses against hand computations: Group-LA, CE_bal^G, CE_deo, Group DRO."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import log_softmax

from autobalance.losses import (
    BalancedGroupCE,
    BlendedLoss,
    CEDEOLoss,
    GroupDROLoss,
    GroupLALoss,
    group_la_parameters,
    make_loss,
    parse_blend,
)

# Waterbirds-like (K=2, G=2) table, rows = classes, columns = groups.
TABLE = np.array([[220.0, 12.0], [38.0, 730.0]])


def _np_ce(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -log_softmax(z, axis=1)[np.arange(len(y)), y]


def _data_from_table(table: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    ys, gs = [], []
    for y in range(table.shape[0]):
        for g in range(table.shape[1]):
            ys += [y] * int(table[y, g])
            gs += [g] * int(table[y, g])
    return torch.tensor(ys), torch.tensor(gs)


def test_group_la_parameters_and_loss() -> None:
    w, l = (t.numpy() for t in group_la_parameters(TABLE, tau=0.7))
    n_g = TABLE.sum(0)
    np.testing.assert_allclose(w, np.tile(TABLE.sum() / (2 * n_g), (2, 1)))
    np.testing.assert_allclose((n_g / TABLE.sum() * w[0]).sum(), 1.0)
    np.testing.assert_allclose(l, 0.7 * np.log(TABLE / n_g))
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(9, 2, generator=gen, dtype=torch.float64)
    targets = torch.randint(0, 2, (9,), generator=gen)
    groups = torch.randint(0, 2, (9,), generator=gen)
    y, g = targets.numpy(), groups.numpy()
    ref = w[y, g] * _np_ce(logits.numpy() + l[:, g].T, y)
    loss = GroupLALoss(TABLE, tau=0.7, reduction="none").double()
    np.testing.assert_allclose(loss(logits, targets, groups).numpy(), ref, rtol=1e-6)
    with pytest.raises(ValueError, match="groups"):
        loss(logits, targets)


def test_ce_bal_group_balances_cells() -> None:
    targets, groups = _data_from_table(TABLE)
    logits = torch.zeros(len(targets), 2, dtype=torch.float64)  # CE = log 2 everywhere
    loss = BalancedGroupCE(TABLE, reduction="none").double()
    per_sample = loss(logits, targets, groups).numpy() / np.log(2)  # = w_{y_i, g_i}
    cells = targets.numpy() * 2 + groups.numpy()
    mass = np.bincount(cells, weights=per_sample)
    np.testing.assert_allclose(mass, np.full(4, TABLE.sum() / 4), rtol=1e-6)
    mean = BalancedGroupCE(TABLE).double()(logits, targets, groups).item()
    np.testing.assert_allclose(mean, np.log(2), rtol=1e-6)  # Σ π w = 1


def test_ce_deo_hand_example() -> None:
    # Class 0: groups 0 and 1 present; class 1: only group 0 present (its pair is skipped).
    logits = torch.tensor(
        [[2.0, 0.0], [0.5, 0.0], [0.0, 1.0], [1.0, -1.0], [0.0, 3.0]], dtype=torch.float64
    )
    targets = torch.tensor([0, 0, 0, 0, 1])
    groups = torch.tensor([0, 0, 1, 1, 0])
    ce = _np_ce(logits.numpy(), targets.numpy())
    expected = abs(ce[[0, 1]].mean() - ce[[2, 3]].mean())
    for reduction in ("mean", "sum"):
        got = CEDEOLoss(num_groups=2, reduction=reduction)(logits, targets, groups)
        np.testing.assert_allclose(got.item(), expected, rtol=1e-12)
    assert torch.isfinite(CEDEOLoss()(logits[:1], targets[:1], groups[:1]))
    assert CEDEOLoss()(logits[:1], targets[:1], groups[:1]).item() == 0.0


def test_ce_deo_three_groups_sums_all_pairs() -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(30, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    targets = torch.arange(30) % 2
    groups = (torch.arange(30) // 2) % 3
    ce = _np_ce(logits.detach().numpy(), targets.numpy())
    y, g = targets.numpy(), groups.numpy()
    expected = 0.0
    for c in range(2):
        means = [ce[(y == c) & (g == j)].mean() for j in range(3)]
        expected += sum(abs(means[a] - means[b]) for a in range(3) for b in range(a + 1, 3))
    got = CEDEOLoss(num_groups=3)(logits, targets, groups)
    np.testing.assert_allclose(got.item(), expected, rtol=1e-12)
    got.backward()  # differentiable through the cell means
    assert logits.grad is not None and bool(torch.isfinite(logits.grad).all())


def test_ce_deo_rejects_none_reduction() -> None:
    with pytest.raises(ValueError, match="batch-level"):
        CEDEOLoss(reduction="none")
    with pytest.raises(ValueError, match="Unknown reduction"):
        CEDEOLoss(reduction="avg")


def test_group_dro_exponentiated_gradient_step() -> None:
    logits = torch.tensor(
        [[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 2.0], [0.3, 0.1]], dtype=torch.float64
    )
    targets = torch.tensor([0, 0, 1, 1, 0])
    groups = torch.tensor([0, 1, 1, 2, 2])
    ce = _np_ce(logits.numpy(), targets.numpy())
    group_loss = np.array([ce[0], ce[[1, 2]].mean(), ce[[3, 4]].mean()])
    eta = 0.5
    loss = GroupDROLoss(3, step_size=eta).double()
    q = np.full(3, 1 / 3)
    for _ in range(2):  # two training steps on the same batch
        q = q * np.exp(eta * group_loss)
        q /= q.sum()
        out = loss(logits, targets, groups)
        np.testing.assert_allclose(loss.q.numpy(), q, rtol=1e-12)
        np.testing.assert_allclose(out.item(), (q * group_loss).sum(), rtol=1e-12)
    loss.eval()
    loss.reduction = "none"
    per_sample = loss(logits, targets, groups).numpy()
    np.testing.assert_allclose(loss.q.numpy(), q, rtol=1e-12)  # no update in eval mode
    counts = np.array([1, 2, 2])
    np.testing.assert_allclose(per_sample, 5 * q[groups] / counts[groups] * ce, rtol=1e-12)
    np.testing.assert_allclose(per_sample.mean(), (q * group_loss).sum(), rtol=1e-12)
    assert "q" in loss.state_dict()


def test_group_dro_by_cell() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 2.0]], dtype=torch.float64)
    targets = torch.tensor([0, 0, 1, 1])
    groups = torch.tensor([0, 1, 1, 1])
    ce = _np_ce(logits.numpy(), targets.numpy())
    cell_loss = np.array([ce[0], ce[1], 0.0, ce[[2, 3]].mean()])  # cells (0,0),(0,1),(1,0),(1,1)
    loss = GroupDROLoss(2, num_classes=2, by="cell", step_size=0.1).double()
    out = loss(logits, targets, groups)
    q = 0.25 * np.exp(0.1 * cell_loss)
    q /= q.sum()
    np.testing.assert_allclose(loss.q.numpy(), q, rtol=1e-12)
    np.testing.assert_allclose(out.item(), (q * cell_loss).sum(), rtol=1e-12)


def test_group_dro_bad_arguments() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        GroupDROLoss(2, by="class")
    with pytest.raises(ValueError, match="num_classes"):
        GroupDROLoss(2, by="cell")
    logits, targets = torch.zeros(3, 2), torch.tensor([0, 1, 0])
    with pytest.raises(ValueError, match=r"group ids must lie in \[0, 2\)"):
        GroupDROLoss(2)(logits, targets, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="needs group ids"):
        GroupDROLoss(2)(logits, targets)


def test_group_tables_must_be_positive() -> None:
    with pytest.raises(ValueError, match="strictly positive"):
        BalancedGroupCE([[3, 0], [2, 2]])
    with pytest.raises(ValueError, match=r"shape \(K, G\)"):
        GroupLALoss([3, 2])


def test_group_losses_with_one_group_are_the_class_losses() -> None:
    # G = 1: Group-LA is LA (τ log π_y, weight 1), CE_bal^G is balanced CE, CE_deo is 0.
    counts = np.array([[50.0], [20.0], [5.0]])
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    targets = torch.arange(40) % 3
    groups = torch.zeros(40, dtype=torch.long)
    group_la = make_loss("group_la", group_counts=counts).double()(logits, targets, groups)
    la = make_loss("la", class_counts=counts[:, 0]).double()(logits, targets)
    np.testing.assert_allclose(group_la.item(), la.item(), rtol=1e-12)
    bal_g = make_loss("ce_bal_group", group_counts=counts).double()(logits, targets, groups)
    bal = make_loss("balanced_ce", class_counts=counts[:, 0]).double()(logits, targets)
    np.testing.assert_allclose(bal_g.item(), bal.item(), rtol=1e-12)
    assert make_loss("ce_deo", group_counts=counts)(logits, targets, groups).item() == 0.0


def test_ce_deo_is_zero_exactly_when_conditional_losses_are_equal() -> None:
    # Two groups with identical (logit, label) rows have equal conditional CE → CE_deo = 0;
    # changing one logit of one group makes it strictly positive.
    gen = torch.Generator().manual_seed(2)
    half = torch.randn(12, 2, generator=gen, dtype=torch.float64)
    y_half = torch.arange(12) % 2
    logits = torch.cat([half, half])
    targets = torch.cat([y_half, y_half])
    groups = torch.cat([torch.zeros(12), torch.ones(12)]).long()
    loss = CEDEOLoss(num_groups=2)
    assert loss(logits, targets, groups).item() == pytest.approx(0.0, abs=1e-15)
    shifted = logits.clone()
    shifted[12, targets[12]] += 0.5  # one sample of group 1 gets a lower CE
    assert loss(shifted, targets, groups).item() > 1e-3


def test_blend_labels_and_limits() -> None:
    assert parse_blend("ce_deo@0.9") == ("ce_deo", 0.9)
    assert parse_blend("ce_deo") is None
    for bad in ("ce_deo@x", "ce_deo@1.5", "@0.5"):
        with pytest.raises(ValueError, match="REG@LAM"):
            parse_blend(bad)
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    targets = torch.arange(30) % 2
    groups = (torch.arange(30) // 2) % 2
    ce = torch.nn.functional.cross_entropy(logits, targets)
    deo = CEDEOLoss(num_groups=2)(logits, targets, groups)
    kw = {"group_counts": TABLE}
    # λ = 0 is CE (no groups needed), λ = 1 is L_reg, in between the convex blend
    assert make_loss("ce_deo@0", **kw)(logits, targets).item() == pytest.approx(ce.item())
    assert make_loss("ce_deo@1", **kw)(logits, targets, groups).item() == pytest.approx(deo.item())
    got = make_loss("ce_deo@0.9", **kw)(logits, targets, groups)
    assert isinstance(make_loss("ce_deo@0.9", **kw), BlendedLoss)
    np.testing.assert_allclose(got.item(), 0.1 * ce.item() + 0.9 * deo.item(), rtol=1e-12)
    bal = make_loss("ce_bal_group", **kw).double()(logits, targets, groups)
    got = make_loss("ce_bal_group@0.5", **kw).double()(logits, targets, groups)
    np.testing.assert_allclose(got.item(), 0.5 * ce.item() + 0.5 * bal.item(), rtol=1e-12)
    with pytest.raises(ValueError, match="Unknown loss"):
        make_loss("nope@0.5", **kw)
