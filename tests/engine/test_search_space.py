"""Search space D_π, inits and the α′ → (w, l, Δ) map."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autobalance.search_space import SearchSpace, frequency_clusters, initial_values

COUNTS = torch.tensor([50, 500, 5, 120, 5000, 20])  # deliberately not sorted by frequency


def test_clusters_follow_frequency_not_label_order() -> None:
    c = frequency_clusters(COUNTS, cluster_size=2)
    # ranks by count: 5000(4), 500(1) | 120(3), 50(0) | 20(5), 5(2)
    assert c.tolist() == [1, 0, 2, 1, 0, 2]
    c3 = frequency_clusters(COUNTS, num_clusters=3)
    assert c3.tolist() == c.tolist()
    with pytest.raises(ValueError, match="exactly one"):
        frequency_clusters(COUNTS)


def test_inits_match_formulas() -> None:
    pi = COUNTS.double() / COUNTS.sum()
    bal = initial_values(COUNTS, "balanced")
    torch.testing.assert_close(bal["weight"], 1 / (6 * pi))
    torch.testing.assert_close((pi * bal["weight"]).sum(), torch.tensor(1.0, dtype=torch.float64))
    la = initial_values(COUNTS, "la", tau=1.5)
    torch.testing.assert_close(la["additive"], 1.5 * torch.log(pi))
    cdt = initial_values(COUNTS, "cdt", gamma=0.3)
    torch.testing.assert_close(cdt["multiplicative"], (COUNTS.double() / 5000) ** 0.3)
    with pytest.raises(ValueError, match="Unknown init"):
        initial_values(COUNTS, "nope")


@pytest.mark.parametrize("init", ["la", "cdt", "vs", "balanced", "ce"])
def test_space_starts_at_its_init(init: str) -> None:
    space = SearchSpace(
        COUNTS, init=init, cluster_size=2, search=("weight", "additive", "multiplicative")
    )
    eff = space.effective()
    ref = initial_values(COUNTS, init)
    for k in ("weight", "additive", "multiplicative"):
        torch.testing.assert_close(eff[k].double(), ref[k], atol=2e-4, rtol=1e-4)


def test_cluster_offsets_are_shared_and_loss_matches_formula() -> None:
    space = SearchSpace(COUNTS, init="la", cluster_size=2)
    with torch.no_grad():
        space.raw["additive"].copy_(torch.tensor([0.5, -1.0, 2.0]))
        space.raw["multiplicative"].copy_(torch.tensor([0.3, 0.0, -0.7]))
    eff = space.effective()
    pi = COUNTS.float() / COUNTS.sum()
    clusters = frequency_clusters(COUNTS, cluster_size=2)
    l_ref = torch.log(pi) + torch.tensor([0.5, -1.0, 2.0])[clusters]
    d_ref = 2 * torch.sigmoid(torch.tensor([0.3, 0.0, -0.7])[clusters])
    torch.testing.assert_close(eff["additive"], l_ref)
    torch.testing.assert_close(eff["multiplicative"], d_ref)
    logits = torch.randn(7, 6)
    y = torch.tensor([0, 1, 2, 3, 4, 5, 2])
    ref = F.cross_entropy(logits * d_ref + l_ref, y)
    torch.testing.assert_close(space.loss(logits, y), ref)


def test_la_tau_space_is_scalar_logit_adjustment() -> None:
    space = SearchSpace(COUNTS, kind="la_tau", init="la")
    assert [p.numel() for p in space.hparams()] == [1]
    pi = COUNTS.float() / COUNTS.sum()
    torch.testing.assert_close(space.effective()["additive"], torch.log(pi))
    with torch.no_grad():
        space.raw["additive"].fill_(0.25)
    torch.testing.assert_close(space.effective()["additive"], 0.25 * torch.log(pi))


def test_group_space_shapes_and_clamp() -> None:
    counts = torch.tensor([[100, 5], [10, 400]])
    space = SearchSpace(counts, kind="full", init="balanced", bounds={"additive": (-1.0, 1.0)})
    assert space.effective()["weight"].shape == (2, 2)
    with torch.no_grad():
        space.raw["additive"].fill_(3.0)
    space.clamp_()
    assert float(space.raw["additive"].detach().max()) == 1.0
    with pytest.raises(ValueError, match="pass groups"):
        space.loss(torch.randn(3, 2), torch.tensor([0, 1, 1]))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="empty cells"):
        SearchSpace(torch.tensor([3, 0, 4]))
    with pytest.raises(ValueError, match="kind"):
        SearchSpace(COUNTS, kind="bogus")
    with pytest.raises(ValueError, match="subset"):
        SearchSpace(COUNTS, search=("temperature",))


def test_gradients_reach_cluster_parameters() -> None:
    space = SearchSpace(COUNTS, init="la", cluster_size=3)
    logits = torch.randn(16, 6)
    y = torch.randint(0, 6, (16,))
    space.loss(logits, y).backward()
    for p in space.hparams():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all())
        assert p.grad.abs().sum() > 0
    with torch.no_grad():
        assert math.isclose(float(space.loss(logits, y, detach=True)), float(space.loss(logits, y)))


def test_group_la_init_is_the_group_la_loss() -> None:
    from autobalance.losses import GroupLALoss

    table = torch.tensor([[220.0, 12.0], [38.0, 730.0]])
    space = SearchSpace(table, kind="full", search=("additive", "multiplicative"), init="group_la")
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 2, generator=gen)
    y = torch.randint(0, 2, (64,), generator=gen)
    g = torch.randint(0, 2, (64,), generator=gen)
    want = GroupLALoss(table)(logits, y, g)
    torch.testing.assert_close(space.loss(logits, y, g), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="group_la"):
        SearchSpace(table[:, 0], kind="full", init="group_la")


@pytest.mark.parametrize(("kind", "init"), [("clusters", "la"), ("la_tau", "la"), ("full", "vs")])
def test_rebase_recentres_the_init_and_keeps_alpha_prime(kind: str, init: str) -> None:
    """effective = init(counts) + D_π α′: rebasing moves the first term only, and α′ = 0 on
    the new counts is exactly the init of a space built over them (what a fallback retrains)."""
    search_counts, full_counts = torch.tensor([400, 40, 4]), torch.tensor([500, 50, 5])
    kw = {"kind": kind, "init": init, "num_clusters": 3} if kind == "clusters" else {"kind": kind}
    space = SearchSpace(search_counts, init=init, **{k: v for k, v in kw.items() if k != "init"})
    fresh = SearchSpace(full_counts, init=init, **{k: v for k, v in kw.items() if k != "init"})
    space.rebase_(full_counts)
    for comp, value in fresh.effective().items():  # α′ = 0: the init of the full counts
        torch.testing.assert_close(space.effective()[comp], value)
    with torch.no_grad():
        for p in space.raw.values():
            p.add_(0.3)
        for p in fresh.raw.values():
            p.add_(0.3)
    for comp, value in fresh.effective().items():  # the same α′ on the same counts
        torch.testing.assert_close(space.effective()[comp], value)
    assert space.clusters.tolist() == SearchSpace(search_counts, **kw).clusters.tolist()
    with pytest.raises(ValueError, match="shape"):
        space.rebase_(torch.tensor([5, 5]))
    with pytest.raises(ValueError, match="empty"):
        space.rebase_(torch.tensor([5, 0, 5]))
