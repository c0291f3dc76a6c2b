"""SearchSpace.loss reuses detached (w, l, Δ) between α′ changes: the cache must never go stale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import log_softmax

import autobalance.losses.parametric as parametric_module
from autobalance.search_space import SearchSpace

K, N, C = 12, 16, 4  # classes, batch, cluster size: 3 clusters


@pytest.fixture(params=["fused", "autograd"])
def path(request, monkeypatch) -> str:
    """Run through the fused autograd function (CPU default) and through plain autograd ops."""
    fused = request.param == "fused"
    monkeypatch.setattr(parametric_module, "FUSED_DEVICE_TYPES", {"cpu"} if fused else set())
    return request.param


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    counts = torch.tensor([90, 3, 50, 7, 20, 1, 60, 12, 5, 33, 2, 41])  # unsorted on purpose
    x = torch.randn(N, K, generator=gen)
    y = torch.randint(0, K, (N,), generator=gen)
    return counts, x, y


def _space(counts: torch.Tensor) -> SearchSpace:
    return SearchSpace(counts, kind="clusters", cluster_size=C, init="la")


def _np_loss(space: SearchSpace, counts, x, y) -> float:
    """Mean of −log softmax(Δ ⊙ x + l)_y with l = log π + l′[c(k)], Δ = 2σ(d′[c(k)]), by hand.

    LA init: Δ₀ = 1, so logit(Δ₀ / 2) = 0; c(k) is the frequency-rank cluster of class k.
    """
    n = counts.numpy().astype(np.float64)
    rank = np.empty(K, dtype=int)
    rank[np.argsort(-n, kind="stable")] = np.arange(K)
    cluster = rank // C
    a_l = space.raw["additive"].detach().double().numpy()[cluster]
    a_d = space.raw["multiplicative"].detach().double().numpy()[cluster]
    z = 2.0 / (1.0 + np.exp(-a_d)) * x.double().numpy() + np.log(n / n.sum()) + a_l
    return float(-log_softmax(z, axis=1)[np.arange(N), y.numpy()].mean())


def _check(space: SearchSpace, counts, x, y) -> float:
    got = space.loss(x, y, detach=True).item()
    np.testing.assert_allclose(got, _np_loss(space, counts, x, y), rtol=2e-6)
    return got


def _alpha_step(space: SearchSpace, opt: torch.optim.Optimizer, x, y) -> None:
    """One optimizer step on α′ from the (non-detached) loss with flipped labels."""
    opt.zero_grad()
    space.loss(x, y.flip(0)).backward()
    opt.step()


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: torch.optim.SGD(p, lr=2.0),
        lambda p: torch.optim.SGD(p, lr=2.0, momentum=0.9, foreach=True),
        lambda p: torch.optim.Adam(p, lr=0.3, foreach=False),
        lambda p: torch.optim.Adam(p, lr=0.3, foreach=True),
    ],
    ids=["sgd", "sgd-foreach", "adam", "adam-foreach"],
)
def test_cache_follows_optimizer_steps(path, data, make_opt) -> None:
    counts, x, y = data
    space = _space(counts)
    opt = make_opt(space.parameters())
    seen = [_check(space, counts, x, y)]
    for _ in range(3):
        _alpha_step(space, opt, x, y)
        seen.append(_check(space, counts, x, y))
        assert seen[-1] != seen[-2]  # α′ moved, and the loss saw it
    assert space.loss(x, y, detach=True).item() == seen[-1]  # a cache hit changes nothing


def test_cache_follows_load_state_dict_and_clamp(path, data) -> None:
    counts, x, y = data
    space, other = _space(counts), _space(counts)
    with torch.no_grad():
        other.raw["additive"].copy_(torch.tensor([0.5, -1.0, 2.0]))
        other.raw["multiplicative"].copy_(torch.tensor([-0.7, 0.3, 1.1]))
    before = _check(space, counts, x, y)
    space.load_state_dict(other.state_dict())
    after = _check(space, counts, x, y)
    assert after != before
    space.bounds = {"additive": (-0.2, 0.2)}
    space.clamp_()
    assert space.raw["additive"].detach().tolist() == pytest.approx([0.2, -0.2, 0.2])
    assert _check(space, counts, x, y) != after


def test_cache_follows_dtype_and_data_writes(data) -> None:
    counts, x, y = data
    space = _space(counts)
    with torch.no_grad():
        space.raw["multiplicative"].fill_(0.4)
    first = _check(space, counts, x, y)
    got64 = space.loss(x.double(), y, detach=True)
    assert got64.dtype == torch.float64
    np.testing.assert_allclose(got64.item(), _np_loss(space, counts, x, y), rtol=1e-6)
    assert _check(space, counts, x, y) == first  # back to float32
    # A write through .data bypasses the version counter; clear_cache() makes it visible.
    space.raw["multiplicative"].data.fill_(-0.4)
    space.clear_cache()
    assert _check(space, counts, x, y) != first


def test_constant_identity_components_are_skipped(data) -> None:
    counts, x, y = data
    space = _space(counts)  # w = 1 is constant; Δ = 2σ(0) = 1 but searched, so it stays
    eff = space._detached_effective(x.dtype, x.device)
    assert eff["weight"] is None
    assert eff["additive"] is not None and eff["multiplicative"] is not None
    _check(space, counts, x, y)
    la_only = SearchSpace(counts, kind="clusters", cluster_size=C, search=("additive",))
    eff = la_only._detached_effective(x.dtype, x.device)
    assert eff["weight"] is None and eff["multiplicative"] is None
    n = counts.double().numpy()
    ref = -log_softmax(x.double().numpy() + np.log(n / n.sum()), axis=1)[np.arange(N), y.numpy()]
    np.testing.assert_allclose(la_only.loss(x, y, detach=True).item(), ref.mean(), rtol=2e-6)


def test_inference_mode_does_not_poison_the_cache(data) -> None:
    counts, x, y = data
    space = _space(counts)
    with torch.no_grad():
        space.raw["multiplicative"].fill_(0.3)
    with torch.inference_mode():
        space.loss(x, y, detach=True)
    xg = x.clone().requires_grad_()
    space.loss(xg, y, detach=True).backward()  # would fail on cached inference tensors
    assert xg.grad is not None and bool(torch.isfinite(xg.grad).all())


def test_alpha_gradients_match_reference(path, data) -> None:
    counts, x, y = data
    space = _space(counts).double()
    with torch.no_grad():
        space.raw["additive"].copy_(torch.tensor([0.3, -0.5, 0.8]))
        space.raw["multiplicative"].copy_(torch.tensor([0.2, -0.4, 0.6]))
    x64 = x.double().requires_grad_()
    space.loss(x64, y, detach=True)  # fill the cache first: it must not leak into the graph
    alphas = [space.raw["additive"], space.raw["multiplicative"]]
    got = torch.autograd.grad(space.loss(x64, y), [x64, *alphas])

    # Independent reference: D_π as a dense one-hot matrix, plain autograd ops.
    n = counts.double()
    rank = torch.empty(K, dtype=torch.long)
    rank[torch.from_numpy(np.argsort(-n.numpy(), kind="stable"))] = torch.arange(K)
    dict_pi = torch.nn.functional.one_hot(rank // C, K // C).double()
    a_l, a_d = (a.detach().clone().requires_grad_() for a in alphas)
    z = 2 * torch.sigmoid(dict_pi @ a_d) * x64 + torch.log(n / n.sum()) + dict_pi @ a_l
    ref_loss = -torch.log_softmax(z, 1)[torch.arange(N), y].mean()
    ref = torch.autograd.grad(ref_loss, [x64, a_l, a_d])
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r)
    # θ-step gradient (α detached) equals the logits part of the full gradient.
    theta = torch.autograd.grad(space.loss(x64, y, detach=True), x64)[0]
    torch.testing.assert_close(theta, ref[0])
