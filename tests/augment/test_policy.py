"""The differentiable image policy (issue 12): gradients, per-class application, sampling."""

from __future__ import annotations

import pytest
import torch

from autobalance.augment import OPS, ImagePolicy, relaxed_bernoulli
from autobalance.augment.ops import MAGNITUDE_OPS, cutout

MEAN, STD = (0.5, 0.4, 0.45), (0.25, 0.2, 0.3)


def images(n: int = 6, seed: int = 0, size: int = 8) -> torch.Tensor:
    """Normalised float64 images (x/255 − mean)/std of random uint8 pixels."""
    g = torch.Generator().manual_seed(seed)
    pix = torch.randint(0, 256, (n, 3, size, size), generator=g).double() / 255
    return (pix - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def policy(ops: tuple[str, ...] = OPS, clusters: tuple[int, ...] = (0, 1, 1)) -> ImagePolicy:
    p = ImagePolicy(
        torch.tensor(clusters), ops, init_prob=0.4, init_magnitude=0.5, mean=MEAN, std=STD
    ).double()
    with torch.no_grad():  # distinct values per policy and operation
        g = torch.Generator().manual_seed(3)
        p.prob.copy_(0.5 * torch.randn(p.prob.shape, generator=g, dtype=torch.float64))
        p.magnitude.copy_(0.5 * torch.randn(p.magnitude.shape, generator=g, dtype=torch.float64))
    return p


def test_gradients_reach_every_policy_parameter_and_match_finite_differences() -> None:
    """Relaxed gates with the noise fixed: the augmented batch is a smooth function of the
    raw probabilities and magnitudes; autograd equals central differences for every entry."""
    pol = policy()
    x = images()
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    noise = pol.sample_noise(x, torch.Generator().manual_seed(5))
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(6), dtype=x.dtype)

    def objective() -> torch.Tensor:
        return (weights * pol.augment(x, y, None, noise, mode="relaxed")).sum()

    params = pol.hparams()
    assert [tuple(p.shape) for p in params] == [(2, len(OPS)), (2, len(MAGNITUDE_OPS))]
    grads = torch.autograd.grad(objective(), params)
    h = 1e-6
    for p, g in zip(params, grads):
        assert bool((g != 0).all()), "every probability and magnitude gets a gradient"
        fd = torch.zeros_like(p)
        with torch.no_grad():
            for i in range(p.numel()):
                flat = p.view(-1)
                flat[i] += h
                up = objective()
                flat[i] -= 2 * h
                down = objective()
                flat[i] += h
                fd.view(-1)[i] = (up - down) / (2 * h)
        torch.testing.assert_close(g, fd, rtol=1e-4, atol=1e-6)


def test_straight_through_is_the_hard_sample_forward_with_a_gradient() -> None:
    pol = policy()
    x = images()
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    noise = pol.sample_noise(x, torch.Generator().manual_seed(8))
    hard = pol.augment(x, y, None, noise, mode="hard")
    st = pol.augment(x, y, None, noise, mode="straight_through")
    torch.testing.assert_close(st, hard, rtol=0, atol=1e-12)
    grads = torch.autograd.grad(st.square().sum(), pol.hparams())
    assert all(bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0 for g in grads)


def test_each_class_gets_the_policy_of_its_cluster() -> None:
    """Class 0 → policy 0 (flip always, brightness never), classes 1, 2 → policy 1 (brightness
    always at its maximum, flip never): each sample shows its own policy's operation only."""
    pol = ImagePolicy(torch.tensor([0, 1, 1]), ("flip", "brightness")).double()
    with torch.no_grad():
        pol.prob.copy_(torch.tensor([[40.0, -40.0], [-40.0, 40.0]]))
        pol.magnitude.fill_(60.0)  # m → 1: +-0.4 in the inputs' units (no normalisation here)
    x = torch.rand(9, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        out = pol(x, y, generator=torch.Generator().manual_seed(2))
    for i, label in enumerate(y.tolist()):
        if label == 0:
            torch.testing.assert_close(out[i], x[i].flip(-1))
        else:
            shift = out[i] - x[i]
            assert torch.allclose(shift, shift.flatten()[0].expand_as(shift))
            assert abs(float(shift.flatten()[0])) == pytest.approx(0.4)
    assert pol.cluster_of(y).tolist() == [0, 1, 1] * 3


def test_grouped_cells_pick_their_policy_by_class_and_group() -> None:
    pol = ImagePolicy(torch.tensor([0, 1, 2, 3]), ("flip",), num_groups=2)
    y, g = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    assert pol.cluster_of(y, g).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="pass groups"):
        pol.cluster_of(y)


def test_hard_gates_are_bernoulli_with_the_policy_probability() -> None:
    logit = torch.full((40000,), torch.logit(torch.tensor(0.3)).item())
    u = torch.rand(40000, generator=torch.Generator().manual_seed(0))
    b = relaxed_bernoulli(logit, u, 0.5, "hard")
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    assert float(b.mean()) == pytest.approx(0.3, abs=0.01)
    soft = relaxed_bernoulli(logit, u, 0.5, "relaxed")
    assert bool(((soft > 0.5) == (b > 0.5)).all())  # the soft gate rounds to the hard one


def test_hard_mode_needs_no_graph_and_keeps_the_identity_at_zero_probability() -> None:
    pol = ImagePolicy(torch.tensor([0, 0]), OPS)
    with torch.no_grad():
        pol.prob.fill_(-60.0)
    x = torch.rand(4, 3, 8, 8)
    out = pol(x, torch.tensor([0, 1, 0, 1]), generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, x)


def test_cutout_mask_modes() -> None:
    x = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    u = torch.tensor([[0.0, 0.5, 0.5]], dtype=torch.float64)
    hard = cutout(x, torch.tensor([1.0], dtype=torch.float64), u, mode="hard")
    assert int((hard == 0).sum()) == 4 * 4  # side 0.5·8 = 4 pixels, centred
    soft = cutout(x, torch.tensor([1.0], dtype=torch.float64), u, mode="soft")
    # the logistic edges integrate to the box: the same area is cut out, with soft borders
    assert float((1 - soft).sum()) == pytest.approx(16.0, abs=0.05)
    assert float(soft.min()) > 0 and float(soft.max()) < 1
    with pytest.raises(ValueError, match="mask mode"):
        cutout(x, torch.tensor([1.0]), u, mode="fuzzy")


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="ops must be"):
        ImagePolicy(torch.tensor([0]), ("translate", "zoom"))
    with pytest.raises(ValueError, match="init_prob"):
        ImagePolicy(torch.tensor([0]), ("flip",), init_prob=1.0)
    with pytest.raises(ValueError, match="RGB"):
        ImagePolicy(torch.tensor([0]), ("saturation",))(
            torch.rand(2, 1, 4, 4), torch.tensor([0, 0]), mode="relaxed"
        )
