"""Spherical augmentation (AutoBalance Lemma 2): sampling, gradients, and the boundary shift."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from autobalance.augment import SphericalPolicy, sample_unit_ball
from autobalance.losses import parametric_cross_entropy


def test_unit_ball_samples_are_uniform() -> None:
    """‖u‖ ≤ 1 and P(‖u‖ ≤ r) = r^d (the radius U^{1/d}), centred, isotropic."""
    d = 3
    u = sample_unit_ball(20000, d, torch.Generator().manual_seed(0), dtype=torch.float64)
    r = u.norm(dim=1)
    assert float(r.max()) <= 1.0
    for q in (0.5, 0.8, 0.95):
        assert float((r <= q).double().mean()) == pytest.approx(q**d, abs=0.015)
    assert float(u.mean(0).abs().max()) < 0.02
    torch.testing.assert_close(
        u.T @ u / len(u), torch.eye(d, dtype=u.dtype) / (d + 2), atol=0.01, rtol=0
    )


def test_radius_gradient_matches_finite_differences() -> None:
    pol = SphericalPolicy(torch.tensor([0, 1, 1]), init_radius=0.7, max_radius=3.0).double()
    with torch.no_grad():
        pol.radius.copy_(torch.tensor([0.3, -0.4], dtype=torch.float64))
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 2])
    noise = pol.sample_noise(x, torch.Generator().manual_seed(2))
    w = torch.randn(5, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def objective() -> torch.Tensor:
        return (w * pol.augment(x, y, None, noise)).sin().sum()

    (grad,) = torch.autograd.grad(objective(), pol.hparams())
    fd = torch.zeros_like(grad)
    with torch.no_grad():
        for i in range(2):
            pol.radius[i] += 1e-6
            up = objective()
            pol.radius[i] -= 2e-6
            fd[i] = (up - objective()) / 2e-6
            pol.radius[i] += 1e-6
    assert bool((grad != 0).all())
    torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-8)
    # each sample moves by its own class's radius
    shift = (pol.augment(x, y, None, noise) - x).norm(dim=1) / torch.as_tensor(noise).norm(dim=1)
    torch.testing.assert_close(shift.detach(), pol.radii()[pol.cluster_of(y)].detach())


def _separable() -> tuple[torch.Tensor, torch.Tensor]:
    """40 majority points around (−2, 0), 5 minority points around (+2, 0): separable."""
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([0.4, 1.0], dtype=torch.float64)
    x0 = torch.randn(40, 2, generator=g, dtype=torch.float64) * scale - torch.tensor([2.0, 0.0])
    x1 = torch.randn(5, 2, generator=g, dtype=torch.float64) * scale + torch.tensor([2.0, 0.0])
    y = torch.cat([torch.zeros(40, dtype=torch.long), torch.ones(5, dtype=torch.long)])
    return torch.cat([x0, x1]), y


def _boundary(radius: float = 0.0, margin: float = 0.0, steps: int = 300) -> float:
    """Where logistic regression trained by full-batch GD puts its boundary on the axis x₂ = 0.

    With ``radius``: the logistic loss on 4 fresh spherical augmentations per point per step,
    ε₀ ≈ 0 (majority), ε₁ = ``radius`` (minority). With ``margin``: the parametric loss (2.1)
    on clean points with l = (0, −margin), which asks the minority for a larger logit margin.
    """
    x, y = _separable()
    pol = SphericalPolicy(torch.tensor([0, 1]), init_radius=1.0, max_radius=4.0).double()
    with torch.no_grad():  # ε₀ = 4·σ(−60) ≈ 0; ε₁ = radius (raw = logit(ε/ε_max) − base)
        target = torch.tensor(max(radius, 1e-12) / 4.0, dtype=torch.float64)
        pol.radius.copy_(torch.stack([torch.tensor(-60.0), torch.logit(target)]))
        pol.radius -= torch.tensor([0.0, float(pol.base_radius_logit)], dtype=torch.float64)
    draws = 4 if radius > 0 else 1
    xr, yr = x.repeat(draws, 1), y.repeat(draws)
    w = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=1.0)
    gen = torch.Generator().manual_seed(1)
    additive = torch.tensor([0.0, -margin], dtype=torch.float64)
    for _ in range(steps):
        with torch.no_grad():
            xa = pol(xr, yr, generator=gen) if radius > 0 else xr
        logits = xa @ w.T + b
        if margin > 0:
            loss = parametric_cross_entropy(logits, yr, additive=additive)
        else:
            loss = F.cross_entropy(logits, yr)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dw, db = (w[1] - w[0]).detach(), float((b[1] - b[0]).detach())
    return -db / float(dw[0])


def test_lemma2_spherical_augmentation_shifts_the_boundary_like_the_loss_margin() -> None:
    """Lemma 2 (paper Fig. 2): a growing ball on the minority class pushes the decision boundary
    away from it, toward the majority (x₁ decreases), monotonically over the radii, as the
    parametric loss's additive margin on the minority does."""
    radii = (0.0, 0.5, 1.0, 1.5)
    by_radius = [_boundary(radius=r) for r in radii]
    by_margin = [_boundary(margin=m) for m in radii]
    assert all(a > b for a, b in itertools.pairwise(by_radius)), by_radius
    assert all(a > b for a, b in itertools.pairwise(by_margin)), by_margin
    # both start from the same plain logistic-regression boundary between the classes ...
    assert by_radius[0] == pytest.approx(by_margin[0])
    assert -2.0 < by_radius[-1] < by_radius[0] < 2.0
    # ... and move it by comparable amounts (the Lemma's equivalence, up to the map ε ↔ l)
    assert math.isclose(by_radius[0] - by_radius[-1], by_margin[0] - by_margin[-1], rel_tol=0.6)


def test_radius_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="init_radius"):
        SphericalPolicy(torch.tensor([0]), init_radius=5.0, max_radius=4.0)
    with pytest.raises(ValueError, match="d ≥ 1"):
        sample_unit_ball(3, 0)
