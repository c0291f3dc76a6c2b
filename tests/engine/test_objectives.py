"""Validation objectives against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autobalance.objectives import OBJECTIVES, make_objective


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    grp = torch.randint(0, 2, (40,), generator=g)
    return logits, y, grp


def _cell_ce(logits, y, grp):
    per = F.cross_entropy(logits, y, reduction="none").numpy()
    out = {}
    for c in range(3):
        for gg in range(2):
            m = (y.numpy() == c) & (grp.numpy() == gg)
            if m.any():
                out[(c, gg)] = per[m].mean()
    return per, out


def test_balanced_and_blend() -> None:
    logits, y, grp = _data()
    per, _ = _cell_ce(logits, y, grp)
    bal = np.mean([per[y.numpy() == c].mean() for c in range(3)])
    assert math.isclose(float(make_objective("balanced_ce")(logits, y)), bal, rel_tol=1e-12)
    blend = 0.7 * per.mean() + 0.3 * bal
    assert math.isclose(float(make_objective("blend", lam=0.3)(logits, y)), blend, rel_tol=1e-12)


def test_deo_and_group_objectives() -> None:
    logits, y, grp = _data(1)
    per, cells = _cell_ce(logits, y, grp)
    deo = sum(abs(cells[(c, 0)] - cells[(c, 1)]) for c in range(3))
    assert math.isclose(float(make_objective("deo")(logits, y, grp)), deo, rel_tol=1e-12)
    ce_deo = 0.5 * per.mean() + 0.5 * deo
    got = float(make_objective("ce_deo", lam=0.5)(logits, y, grp))
    assert math.isclose(got, ce_deo, rel_tol=1e-12)
    gb = np.mean(list(cells.values()))
    got = float(make_objective("group_balanced_ce")(logits, y, grp))
    assert math.isclose(got, gb, rel_tol=1e-12)
    worst = float(make_objective("worst_group", temperature=1e-3)(logits, y, grp))
    assert abs(worst - max(cells.values())) < 5e-3
    assert worst <= max(cells.values()) + 1e-12


def test_absent_cells_are_skipped() -> None:
    logits = torch.randn(4, 3, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1])  # class 2 absent
    per = F.cross_entropy(logits, y, reduction="none")
    ref = 0.5 * (per[:2].mean() + per[2:].mean())
    val = make_objective("balanced_ce")(logits, y)
    assert torch.isfinite(val)
    torch.testing.assert_close(val, ref)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_every_objective_is_differentiable(name: str) -> None:
    logits, y, grp = _data(2)
    logits.requires_grad_(True)
    val = make_objective(name)(logits, y, grp)
    (grad,) = torch.autograd.grad(val, logits)
    assert torch.isfinite(grad).all()


def test_bad_names_and_options() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        make_objective("accuracy")
    with pytest.raises(ValueError, match="accepts"):
        make_objective("ce", lam=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make_objective("blend", lam=1.5)
    logits, y, _ = _data()
    with pytest.raises(ValueError, match="group ids"):
        make_objective("deo")(logits, y)


def test_balanced_soft_error_tends_to_balanced_error() -> None:
    logits, y, _ = _data(3)
    pred = logits.argmax(1)
    bal_err = np.mean([(pred[y == c] != c).double().mean().item() for c in range(3)])
    soft = float(make_objective("balanced_soft_error", temperature=1e-4)(logits, y))
    assert abs(soft - bal_err) < 1e-6
    smooth = make_objective("balanced_soft_error", temperature=1.0)(logits, y)
    assert 0 < float(smooth) < 1
