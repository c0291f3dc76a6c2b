"""``HyperConfig.official()`` gives the hypergradient of the official AutoBalance code.

The official implementation (github.com/ucr-optml/AutoBalance, ``core/trainer.py``,
``train_epoch``; ``core/utils.py``, ``neumann_hyperstep_preconditioner``) takes a hyper-step as

1. g = (1/10) Σ_b ∇_θ L_train(batch b) over 10 training batches, kept with its graph;
2. v = (1/10) Σ_b ∇_θ L_val(batch b) over 10 validation batches; L_val is CE weighted by
   w_y ∝ 1/n_y^val (``get_val_w``), i.e. a balanced CE;
3. p = η Σ_{j=0}^{5} (I − ηH)^j v with η = 1.0: the loop runs 5 times, each time one
   Hessian-vector product counter ← counter − η·H·counter and preconditioner += counter, so it
   sums 6 terms; the result is multiplied by η;
4. indirect = ∇_α ⟨g, p⟩ (the mixed second derivative ∂²L_train/∂α∂θ applied to p);
5. hypergradient = −indirect (the direct term ∂L_val/∂α is commented out; L_val does not
   depend on α anyway). The train loss carries no weight decay (it lives in the optimiser), so
   the Hessian is undamped.

The reference below re-implements these steps with plain ``torch.autograd`` on a flat θ, in
float64, on a tiny MLP whose train loss is our :class:`SearchSpace` loss. It is checked
against :func:`implicit_hypergradient` with the ``HyperConfig.official()`` settings and against
:meth:`AutoBalanceSearch.hyper_step` run with that config. The inputs are scaled so that
λ_max(H) > 2, where the series diverges and the 6th term matters: the old setting
``iterations=5`` (4 Hessian-vector products) then gives a clearly different hypergradient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autobalance.config import GuardConfig, HyperConfig, SearchConfig, SpaceConfig
from autobalance.data import InMemoryDataset
from autobalance.hypergrad import implicit_hypergradient, neumann_solver
from autobalance.search import AutoBalanceSearch
from autobalance.search_space import SearchSpace
from autobalance.train import TrainConfig

DT = torch.float64
K, D, HIDDEN = 3, 4, 5
# Per-class training counts of the tiny long-tailed problem, and the input scale that puts
# λ_max(H) above 2 (measured: 3.8 and 2.9 in the two hypergradient tests below).
COUNTS = (40, 15, 6)
X_SCALE = 3.0
OFFICIAL_HVPS = 5  # `neumann_hyperstep_preconditioner(..., 1.0, 5, model)` in core/trainer.py
OFFICIAL_STEP = 1.0


# ---------------------------------------------------------------------- the official recipe


def _flat(tensors: tuple[Tensor | None, ...]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors if t is not None])


def official_hypergradient(
    model: nn.Module,
    train_loss_fn: Callable[[Tensor, Tensor], Tensor],
    val_weight: Tensor,
    train_batches: list[tuple[Tensor, Tensor]],
    val_batches: list[tuple[Tensor, Tensor]],
    hparams: list[Tensor],
    *,
    hvps: int = OFFICIAL_HVPS,
    step: float = OFFICIAL_STEP,
) -> Tensor:
    """The official hyper-step's gradient, −∇_α⟨ḡ, η Σ_{j≤hvps} (I − ηH)^j v̄⟩, flattened.

    ḡ: mean over ``train_batches`` of ∇_θ L_train (with graph); v̄: mean over ``val_batches``
    of ∇_θ of the class-weighted CE with ``val_weight``; H v = ∇_θ⟨ḡ, v⟩.
    """
    params = list(model.parameters())
    g = torch.zeros(sum(p.numel() for p in params), dtype=DT)
    for x, y in train_batches:
        loss = train_loss_fn(model(x), y)
        g = g + _flat(torch.autograd.grad(loss, params, create_graph=True))
    g = g / len(train_batches)
    v = torch.zeros_like(g)
    for x, y in val_batches:
        loss = F.cross_entropy(model(x), y, weight=val_weight)
        v = v + _flat(torch.autograd.grad(loss, params))
    v = v / len(val_batches)
    # Neumann loop: `hvps` Hessian-vector products, hvps + 1 terms, then times the step.
    counter = v.detach()
    total = counter
    for _ in range(hvps):
        hv = _flat(torch.autograd.grad(g, params, grad_outputs=counter, retain_graph=True))
        counter = counter - step * hv
        total = total + counter
    preconditioner = step * total
    indirect = _flat(torch.autograd.grad(g, hparams, grad_outputs=preconditioner))
    return -indirect


def official_val_weight(val_counts: Tensor) -> Tensor:
    """w_y = (N/n_y) / ‖N/n‖ over the validation counts (the official ``get_val_w``)."""
    w = val_counts.sum() / val_counts
    return (w / w.norm()).to(DT)


# ---------------------------------------------------------------------- fixtures


def _data(n_per_class: tuple[int, ...], gen: torch.Generator) -> tuple[Tensor, Tensor]:
    y = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(n_per_class)])
    means = torch.randn(K, D, generator=gen, dtype=DT)
    x = X_SCALE * (means[y] + 0.7 * torch.randn(len(y), D, generator=gen, dtype=DT))
    return x, y


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, K)).to(DT)


def _space(counts: Tensor, gen: torch.Generator) -> SearchSpace:
    """CIFAR10-LT's paper space (l and Δ per class, LA init) at a random, non-zero α′."""
    space = SearchSpace(counts, kind="full", search=("additive", "multiplicative"), init="la")
    space = space.to(DT)
    with torch.no_grad():
        for p in space.hparams():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=DT))
    return space


def _batches(
    x: Tensor, y: Tensor, n: int, size: int, gen: torch.Generator
) -> list[tuple[Tensor, Tensor]]:
    idx = [torch.randint(len(y), (size,), generator=gen) for _ in range(n)]
    return [(x[i], y[i]) for i in idx]


def _hessian_max_eigenvalue(model: nn.Module, loss: Tensor) -> float:
    params = list(model.parameters())
    g = _flat(torch.autograd.grad(loss, params, create_graph=True))
    rows = [
        _flat(torch.autograd.grad(g, params, grad_outputs=e, retain_graph=True))
        for e in torch.eye(g.numel(), dtype=DT)
    ]
    return float(torch.linalg.eigvalsh(torch.stack(rows)).max())


# ---------------------------------------------------------------------- tests


def test_official_config_is_five_hvps_six_terms() -> None:
    h = HyperConfig.official()
    assert (h.interval, h.train_batches, h.val_batches, h.val_sampling) == (20, 10, 10, "uniform")
    assert (h.method, h.iterations, h.scale, h.auto_scale, h.damping, h.scope) == (
        "neumann",
        OFFICIAL_HVPS + 1,
        OFFICIAL_STEP,
        False,
        0.0,
        "full",
    )
    calls = []

    def matvec(v: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        calls.append(1)
        return tuple(0.5 * t for t in v)

    b = (torch.ones(3, dtype=DT),)
    x = neumann_solver(h.iterations, h.scale)(matvec, b)
    assert len(calls) == OFFICIAL_HVPS
    # s Σ_{j=0}^{5} (1 − s·0.5)^j with s = 1
    torch.testing.assert_close(x[0], torch.full((3,), sum(0.5**j for j in range(6)), dtype=DT))


def test_implicit_hypergradient_matches_the_official_recipe() -> None:
    gen = torch.Generator().manual_seed(0)
    x_tr, y_tr = _data(COUNTS, gen)
    val_counts = (10, 4, 2)
    x_va, y_va = _data(val_counts, gen)
    space = _space(torch.tensor(COUNTS), gen)
    model = _mlp()
    h = HyperConfig.official()
    train_b = _batches(x_tr, y_tr, h.train_batches, 16, gen)
    val_b = _batches(x_va, y_va, h.val_batches, 8, gen)
    w_val = official_val_weight(torch.tensor(val_counts, dtype=DT))

    full_loss = space.loss(model(x_tr), y_tr)
    lam = _hessian_max_eigenvalue(model, full_loss)
    assert lam > 2.0, lam  # the regime where a truncated series at step 1 diverges

    reference = official_hypergradient(model, space.loss, w_val, train_b, val_b, space.hparams())

    def ours(iterations: int) -> Tensor:
        train_loss = sum(space.loss(model(x), y) for x, y in train_b) / len(train_b)
        val_loss = sum(F.cross_entropy(model(x), y, weight=w_val) for x, y in val_b)
        hg = implicit_hypergradient(
            train_loss,
            val_loss / len(val_b),
            list(model.parameters()),
            space.hparams(),
            method=h.method,
            iterations=iterations,
            scale=h.scale,
            damping=h.damping if h.damping is not None else 0.0,
        )
        return _flat(hg)

    assert reference.abs().max() > 1e-3  # a non-trivial hypergradient
    torch.testing.assert_close(ours(h.iterations), reference, rtol=1e-9, atol=1e-12)
    # The old setting (5 terms = 4 HVPs) misses the largest term when λ_max > 2 (measured:
    # 64 % relative difference).
    old = ours(OFFICIAL_HVPS)
    assert (old - reference).norm() > 0.5 * reference.norm()


def test_engine_hyper_step_with_official_config_matches_the_official_recipe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gen = torch.Generator().manual_seed(1)
    x, y = _data((50, 20, 10), gen)
    data = InMemoryDataset(x, y, num_classes=K)
    cfg = SearchConfig(
        seed=0,
        val_fraction=0.2,
        objective="balanced_ce",
        space=SpaceConfig(kind="full", search=("additive", "multiplicative"), init="la"),
        hyper=HyperConfig.official(),
        guard=GuardConfig(enabled=False),
        train=TrainConfig(epochs=1, batch_size=16),
    )
    engine = AutoBalanceSearch(cfg, _mlp, data)
    engine.space.to(DT)
    with torch.no_grad():
        for p in engine.space.hparams():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=DT))
    model = _mlp()
    s_tr, s_va = engine.s_train, engine.s_val

    # Fix the batches the engine draws: 10 training batches of 16, and 10 validation batches
    # that are each all of S_V (shuffled). On all of S_V the official weighted CE (w ∝ 1/n_y)
    # equals our balanced CE, so both recipes see the same upper objective.
    train_idx = [torch.randint(len(s_tr), (16,), generator=gen) for _ in range(10)]
    val_idx = [torch.randperm(len(s_va), generator=gen) for _ in range(10)]

    def draws() -> Iterator[Tensor]:
        yield from train_idx
        yield from val_idx

    order = draws()
    seen: list[str] = []

    def fake_sample(d: InMemoryDataset, n: int, g: torch.Generator, balanced: bool) -> Tensor:
        seen.append("train" if d is s_tr else "val")
        return next(order)

    monkeypatch.setattr(engine, "_sample", fake_sample)
    alpha_opt = torch.optim.SGD(engine.space.hparams(), lr=0.05, momentum=0.9)
    hparams = engine.space.hparams()

    val_counts = torch.bincount(s_va.y, minlength=K).to(DT)
    reference = official_hypergradient(
        model,
        engine.space.loss,
        official_val_weight(val_counts),
        [(s_tr.x[i], s_tr.y[i]) for i in train_idx],
        [(s_va.x[i], s_va.y[i]) for i in val_idx],
        hparams,
    )
    lam = _hessian_max_eigenvalue(model, engine.space.loss(model(s_tr.x), s_tr.y))
    assert lam > 2.0, lam

    # weight_decay is the θ optimiser's; official() sets damping=0, so it must not enter H.
    info = engine.hyper_step(model, alpha_opt, gen, weight_decay=1e-4)
    assert info["applied"] and info["neumann_scale"] == 1.0, info
    assert seen == ["train"] * 10 + ["val"] * 10
    got = _flat(tuple(p.grad for p in hparams))
    torch.testing.assert_close(got, reference, rtol=1e-9, atol=1e-12)
