"""The search's stability guard: spike clipping, rollback, fallback, averaging, and the new
hyper-step knobs (per-epoch interval, λ̂ rescaling, α following θ's decay, full S_V)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from autobalance import SearchConfig, make_loss, make_model
from autobalance.config import GuardConfig, HyperConfig, from_dict, to_dict
from autobalance.data import long_tailed_gaussians
from autobalance.guard import SearchGuard, balanced_error_se
from autobalance.search import AutoBalanceSearch
from autobalance.search_space import SearchSpace
from autobalance.train import TrainConfig, decay_factor


def _space() -> SearchSpace:
    bounds = {"additive": (-5.0, 5.0), "multiplicative": (-5.0, 5.0)}
    return SearchSpace([50, 20, 5], kind="full", bounds=bounds)


def _guard(**kw) -> SearchGuard:
    return SearchGuard(GuardConfig(**kw), _space(), torch.tensor([10, 4, 1]))


def test_balanced_error_se_is_the_worst_case_binomial_formula() -> None:
    counts = torch.tensor([100, 10, 1])
    expected = math.sqrt(0.25 / 100 + 0.25 / 10 + 0.25 / 1) / 3
    assert balanced_error_se(counts) == pytest.approx(expected)
    assert _guard(z=2.0).noise == pytest.approx(2 * balanced_error_se(torch.tensor([10, 4, 1])))


def test_spikes_are_clipped_to_a_multiple_of_the_running_median() -> None:
    g = _guard(spike=10.0)
    assert [g.spike_bound(n) for n in (1.0, 2.0, 1.0)] == [None, None, None]  # too few norms
    assert g.spike_bound(100.0) == pytest.approx(10.0)  # 10 × median(1, 2, 1)
    assert g.norms[-1] == pytest.approx(10.0)  # the clipped norm enters the window
    assert g.spike_bound(5.0) is None and g.spikes == 1
    assert _guard(enabled=False).spike_bound(1e9) is None


def _optimisers(model: nn.Module, space: SearchSpace):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    a_opt = torch.optim.SGD(space.hparams(), lr=0.05, momentum=0.9)
    return opt, a_opt, torch.optim.lr_scheduler.LambdaLR(a_opt, lambda _: 1.0)


def test_divergence_rolls_back_theta_and_alpha_then_freezes() -> None:
    g = _guard(margin=0.1, z=0.0, max_rollbacks=2, shrink=0.5)
    model = nn.Linear(3, 3)
    opt, a_opt, a_sched = _optimisers(model, g.space)
    g.start(0.30)
    kw = {"model": model, "optimizer": opt, "alpha_opt": a_opt, "alpha_sched": a_sched}
    assert g.end_of_epoch(5, 0.35, **kw) is None  # within the margin: healthy
    weights = model.weight.detach().clone()
    raw = g.space.raw["additive"].detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
        g.space.raw["additive"].add_(2.0)
    event = g.end_of_epoch(6, 0.55, **kw)
    assert event is not None and event["event"] == "rollback" and event["to_epoch"] == 5
    assert torch.equal(model.weight, weights)
    assert torch.equal(g.space.raw["additive"].detach(), raw)
    assert a_opt.param_groups[0]["lr"] == pytest.approx(0.025)
    assert a_sched.base_lrs == [pytest.approx(0.025)]
    assert not g.frozen
    assert g.end_of_epoch(7, 0.60, **kw) is not None and g.frozen
    assert g.end_of_epoch(8, 0.90, **kw) is None  # frozen: nothing more to roll back
    assert g.report()["rollbacks"] == 2


def test_divergence_is_measured_against_the_reference_theta_too() -> None:
    # θ alone drifts: the reference θ (α₀, no hyper-steps) is at 0.50 by epoch 6. A searched θ
    # at 0.55 is within the margin of it, so no rollback; at 0.65 it is beyond both.
    g = _guard(margin=0.1, z=0.0)
    model = nn.Linear(3, 3)
    opt, a_opt, a_sched = _optimisers(model, g.space)
    g.start(0.30)
    kw = {"model": model, "optimizer": opt, "alpha_opt": a_opt, "alpha_sched": a_sched}
    assert g.end_of_epoch(6, 0.55, reference_score=0.50, **kw) is None
    event = g.end_of_epoch(7, 0.65, reference_score=0.50, **kw)
    assert event is not None and "reference θ 0.5000" in event["reason"]
    # a reference below the start does not lower the bar
    assert g.end_of_epoch(8, 0.38, reference_score=0.20, **kw) is None


def test_every_alpha_on_its_bound_counts_as_divergence() -> None:
    g = _guard(z=0.0)
    model = nn.Linear(3, 3)
    opt, a_opt, a_sched = _optimisers(model, g.space)
    kw = {"model": model, "optimizer": opt, "alpha_opt": a_opt, "alpha_sched": a_sched}
    g.start(0.3)
    with torch.no_grad():
        for p in g.space.hparams():
            p.fill_(5.0)
    assert g.pinned_fraction() == 1.0
    event = g.end_of_epoch(3, 0.3, **kw)
    assert event is not None and "bound" in event["reason"]
    assert all(torch.all(p == 0) for p in g.space.hparams())  # back to α₀


def test_fallback_against_the_reference_and_against_the_start() -> None:
    g = _guard(z=0.0)
    g.start(0.40)
    g.last_score = 0.30
    with torch.no_grad():
        g.space.raw["additive"].fill_(1.0)
    kept = g.finish(average=0.0, search_epochs=10, start_epoch=4, reference_score=0.31)
    assert not kept["fell_back"] and float(g.space.raw["additive"].detach()[0]) == 1.0
    assert not kept["would_fall_back"] and kept["fallback_reason"] is None
    g.cfg.fallback = False  # the verdict is recorded, α* is kept
    off = g.finish(average=0.0, search_epochs=10, start_epoch=4, reference_score=0.29)
    assert off["would_fall_back"] and not off["fell_back"]
    assert "fallback off" in off["fallback_reason"]
    assert float(g.space.raw["additive"].detach()[0]) == 1.0
    g.cfg.fallback = True
    back = g.finish(average=0.0, search_epochs=10, start_epoch=4, reference_score=0.29)
    assert back["fell_back"] and back["would_fall_back"] and "reference" in back["fallback_reason"]
    assert float(g.space.raw["additive"].detach().abs().max()) == 0.0
    # without a reference: the start of the search, plus the noise allowance
    h = _guard(z=1.0)
    h.start(0.30)
    with torch.no_grad():
        h.space.raw["additive"].fill_(1.0)  # α moved (an unmoved α is never a fallback)
    h.last_score = 0.30 + 0.9 * h.noise
    assert not h.finish(average=0.0, search_epochs=10, start_epoch=4)["fell_back"]
    h.last_score = 0.30 + 1.1 * h.noise
    assert h.finish(average=0.0, search_epochs=10, start_epoch=4)["fell_back"]


def test_tail_average_of_alpha_snapshots() -> None:
    g = _guard()
    model = nn.Linear(3, 3)
    opt, a_opt, a_sched = _optimisers(model, g.space)
    kw = {"model": model, "optimizer": opt, "alpha_opt": a_opt, "alpha_sched": a_sched}
    g.start(0.5)
    for epoch, value in zip(range(4, 10), (0.0, 1.0, 2.0, 3.0, 4.0, 5.0), strict=True):
        with torch.no_grad():
            g.space.raw["additive"].fill_(value)
        assert g.end_of_epoch(epoch, 0.5, **kw) is None
    rep = g.finish(average=0.5, search_epochs=10, start_epoch=4)  # last 3 epochs: 7, 8, 9
    assert rep["averaged_snapshots"] == 3
    torch.testing.assert_close(g.space.raw["additive"].detach(), torch.full((3,), 4.0))


def _engine(**sets) -> AutoBalanceSearch:
    train = long_tailed_gaussians(num_classes=4, dim=8, n_max=60, imbalance_ratio=10, seed=1)
    cfg = SearchConfig(seed=0, train=TrainConfig(epochs=6, batch_size=16, warmup_epochs=0))
    for key, value in sets.items():
        obj, _, attr = key.rpartition(".")
        setattr(getattr(cfg, obj) if obj else cfg, attr, value)
    return AutoBalanceSearch(cfg, lambda: make_model("mlp", 4, in_features=8, hidden=(16,)), train)


def test_per_epoch_interval_and_alpha_lr_following_theta() -> None:
    assert HyperConfig(per_epoch=3).interval_for(10) == 3
    assert HyperConfig(per_epoch=30).interval_for(10) == 1
    assert HyperConfig(interval=7).interval_for(10) == 7
    eng = _engine(**{"hyper.per_epoch": 2, "hyper_start": 0.0})
    res = eng.run()
    steps = eng.cfg.train.steps_per_epoch(len(eng.s_train))
    per_epoch = [sum(1 for h in res.hyper_steps if h["epoch"] == e) for e in range(6)]
    assert per_epoch == [steps // (steps // 2)] * 6
    tc = eng.cfg.train
    for h in res.hyper_steps:
        expected = (
            eng.cfg.alpha.lr
            * decay_factor(tc, steps, h["step"])
            * 0.5 ** (sum(1 for ev in res.guard["events"] if ev["epoch"] < h["epoch"]))
        )
        assert h["alpha_lr"] == pytest.approx(expected)
    assert {h["alpha_lr"] for h in res.hyper_steps} >= {eng.cfg.alpha.lr}
    assert min(h["alpha_lr"] for h in res.hyper_steps) < eng.cfg.alpha.lr  # decayed with θ


@pytest.mark.parametrize("rescale", ["once", "epoch"])
def test_neumann_step_is_re_estimated_each_epoch(rescale: str) -> None:
    res = _engine(**{"hyper.rescale": rescale, "hyper.interval": 2, "hyper_start": 0.0}).run()
    scales = {}
    for h in res.hyper_steps:
        scales.setdefault(h["epoch"], set()).add(h["neumann_scale"])
    assert all(len(v) == 1 for v in scales.values())  # one estimate per epoch at most
    distinct = len(set().union(*scales.values()))
    assert distinct == 1 if rescale == "once" else distinct > 1


def test_full_validation_objective_uses_all_of_s_val() -> None:
    eng = _engine(**{"hyper.val_sampling": "full", "hyper.val_batch_size": 7})
    model = eng._new_model()
    with torch.no_grad():
        got = eng._val_loss(model, torch.Generator().manual_seed(0), 7)
        want = eng.objective(model(eng.s_val.x), eng.s_val.y, None)
    torch.testing.assert_close(got, want)
    # above val_full_max: a class-balanced sample of that size, fresh at each hyper-step
    eng.cfg.hyper.val_full_max = 8
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        first, second = (eng._val_loss(model, gen, 7) for _ in range(2))
    assert not torch.equal(first, want) and not torch.equal(first, second)


def _record_chunks(eng: AutoBalanceSearch, seed: int, chunk: int) -> list[Tensor]:
    """The S_V rows of each chunk that one evaluation of ``eng``'s full objective forwards."""
    seen: list[Tensor] = []

    def logits_fn(x: Tensor) -> Tensor:
        seen.append((x[:, None, :] == eng.s_val.x[None]).all(-1).float().argmax(1))
        return torch.zeros(len(x), 4)

    eng._val_loss(logits_fn, torch.Generator().manual_seed(seed), chunk)
    return seen


def test_full_validation_chunks_mix_the_classes_of_a_class_sorted_s_val() -> None:
    """S_V is stored class by class; in training mode a BatchNorm normalises each chunk with its
    own statistics, so the chunks must be random mixes, not runs of one class."""
    data = long_tailed_gaussians(num_classes=4, dim=8, n_max=60, imbalance_ratio=10, seed=1)
    data = data.subset(torch.argsort(data.y, stable=True))  # as make_long_tailed stores it
    cfg = SearchConfig(seed=0, train=TrainConfig(epochs=1, batch_size=16, warmup_epochs=0))
    cfg.hyper.val_sampling, cfg.hyper.val_batch_size = "full", 7
    eng = AutoBalanceSearch(cfg, lambda: make_model("mlp", 4, in_features=8, hidden=(16,)), data)
    y = eng.s_val.y
    assert torch.equal(y, y.sort().values)  # S_V keeps that order
    seen = _record_chunks(eng, 0, 7)
    rows = torch.cat(seen)
    assert sorted(rows.tolist()) == list(range(len(y)))  # every row once
    chunk_classes = [len(set(y[r].tolist())) for r in seen[:-1]]
    assert min(chunk_classes) > 1  # no chunk of one class
    # a different hyper-step visits S_V in another order
    assert not torch.equal(torch.cat(_record_chunks(eng, 1, 7)), rows)
    # above val_full_max, the class-balanced sample (drawn class by class) is shuffled too
    eng.cfg.hyper.val_full_max = 16
    seen = _record_chunks(eng, 0, 4)
    labels = y[torch.cat(seen)]
    assert len(labels) == 16 and not torch.equal(labels, labels.sort().values)
    assert min(len(set(y[r].tolist())) for r in seen) > 1  # grouped, each chunk would be one


def test_renamed_and_new_config_keys() -> None:
    with pytest.raises(ValueError, match="renamed to 'hyper_start'"):
        from_dict(SearchConfig, {"warmup_fraction": 0.4})
    cfg = from_dict(SearchConfig, {"guard": {"spike": 5, "reference": False}})
    assert cfg.guard.spike == 5 and cfg.guard.reference is False
    assert to_dict(cfg)["guard"]["z"] == 2.0
    for bad in ({"spike": 1.0}, {"shrink": 1.0}, {"z": -1}, {"window": 0}):
        with pytest.raises(ValueError):
            GuardConfig(**bad)
    with pytest.raises(ValueError, match="rescale"):
        HyperConfig(rescale="sometimes")
    with pytest.raises(ValueError, match="average"):
        from_dict(SearchConfig, {"alpha": {"average": 1.0}})


def test_records_carry_the_running_training_accuracy() -> None:
    res = _engine(**{"retrain": False}).run()
    accs = [r["train_acc"] for r in res.history]
    assert all(0.0 <= a <= 1.0 for a in accs) and accs[-1] > accs[0]


def _rebuild(eng: AutoBalanceSearch):
    """The ``rebuild`` that ``_check_from_scratch`` takes: a fresh optimiser and schedule."""
    from autobalance.train import make_optimizer, make_scheduler

    tc = eng.cfg.train
    steps = tc.steps_per_epoch(len(eng.s_train))

    def rebuild(m: nn.Module):
        opt = make_optimizer(m, tc)
        return opt, make_scheduler(opt, tc, steps)

    return rebuild


def test_a_from_scratch_check_that_fails_falls_back_to_the_init() -> None:
    eng = _engine()
    rebuild = _rebuild(eng)
    y = eng.s_val.y
    wrong = (y + 1) % 4  # a reference that gets every S_V row wrong: any θ is at least as good
    with torch.no_grad():
        eng.space.raw["additive"].fill_(0.7)
    kept = eng._check_from_scratch(wrong, rebuild, {"fell_back": False})
    assert not kept["fell_back"] and 0 <= kept["from_scratch_val_score"] <= 1
    assert kept["from_scratch_paired_se"] >= 0
    assert float(eng.space.raw["additive"].detach()[0]) == pytest.approx(0.7)
    eng.cfg.guard.fallback = False  # scored and reported, never reset
    eng.cfg.guard.fallback_margin = -2.0  # a gain of 2 in a score within [0, 1]: impossible
    kept = eng._check_from_scratch(y, rebuild, {"fell_back": False})
    assert not kept["fell_back"] and float(eng.space.raw["additive"].detach()[0]) == pytest.approx(
        0.7
    )
    assert kept["would_fall_back"] and "α* kept (fallback off)" in kept["fallback_reason"]
    eng.cfg.guard.fallback = True
    back = eng._check_from_scratch(y, rebuild, {"fell_back": False})
    assert back["fell_back"] and "from scratch" in back["fallback_reason"]
    assert float(eng.space.raw["additive"].detach().abs().max()) == 0.0


def _paired_analytic_se(y: torch.Tensor, a: torch.Tensor, b: torch.Tensor, k: int) -> float:
    """SE of the balanced-error difference from the per-class variance of the per-row error
    difference: √(Σ_k Var_k(d)/n_k) / K (the delta method for a stratified mean)."""
    d = (a != y).double() - (b != y).double()
    var = sum(float(d[y == c].var(unbiased=False)) / int((y == c).sum()) for c in range(k))
    return math.sqrt(var) / k


def test_paired_score_se_matches_the_stratified_formula_and_pairs_the_rows() -> None:
    from autobalance.guard import paired_score_se
    from autobalance.metrics import balanced_error

    gen = torch.Generator().manual_seed(0)
    y = torch.cat([torch.full((n,), c) for c, n in enumerate((200, 60, 20, 6))])
    a = torch.where(torch.rand(len(y), generator=gen) < 0.3, (y + 1) % 4, y)
    b = torch.where(torch.rand(len(y), generator=gen) < 0.1, (y + 2) % 4, a)  # a, changed a bit

    def score(pred: torch.Tensor, rows: torch.Tensor) -> float:
        return balanced_error(y[rows], pred, num_classes=4)

    se = paired_score_se(score, a, b, y, draws=4000, seed=1)
    assert se == pytest.approx(_paired_analytic_se(y, a, b, 4), rel=0.08)
    assert paired_score_se(score, a, a, y) == 0.0  # identical models: no noise at all
    # pairing: the SE of a difference between two close models is far below a single score's
    assert se < 0.5 * balanced_error_se(torch.tensor([200, 60, 20, 6]))


def test_keep_z_demands_a_gain_beyond_the_paired_noise() -> None:
    # with the from-scratch check on, keep_z weighs that check, not the searched θ's
    on = _guard(z=0.0, keep_z=2.0)
    on.start(0.40)
    on.last_score = 0.30
    assert not on.finish(
        average=0.0, search_epochs=10, start_epoch=4, reference_score=0.31, paired_se=0.5
    )["fell_back"]
    g = _guard(z=0.0, keep_z=2.0, check_from_scratch=False)
    g.start(0.40)
    g.last_score = 0.30
    with torch.no_grad():
        g.space.raw["additive"].fill_(1.0)
    # 0.30 vs 0.35: a gain of 0.05 with SE 0.02 passes (needs > 0.04) ...
    kept = g.finish(
        average=0.0, search_epochs=10, start_epoch=4, reference_score=0.35, paired_se=0.02
    )
    assert not kept["fell_back"] and kept["reference_paired_se"] == 0.02
    # ... with SE 0.03 it does not (needs > 0.06)
    back = g.finish(
        average=0.0, search_epochs=10, start_epoch=4, reference_score=0.35, paired_se=0.03
    )
    assert back["fell_back"] and "-0.0600" in back["fallback_reason"]
    assert g.allowance(0.03) == pytest.approx(-0.06)
    assert _guard(keep_z=0.0).allowance(0.5) == 0.0


def test_a_negative_keep_z_falls_back_only_on_harm_beyond_the_paired_noise() -> None:
    # keep_z = -1: the searched θ may be worse than the reference by up to 1 SE ...
    g = _guard(z=0.0, keep_z=-1.0)  # the from-scratch check on (the default)
    g.start(0.40)
    with torch.no_grad():
        g.space.raw["additive"].fill_(1.0)
    g.last_score = 0.33  # 0.03 worse than the reference, SE 0.05: kept
    kept = g.finish(
        average=0.0, search_epochs=10, start_epoch=4, reference_score=0.30, paired_se=0.05
    )
    assert not kept["fell_back"] and float(g.space.raw["additive"].detach()[0]) == 1.0
    # ... and not by more: 0.03 worse with SE 0.02 is harm beyond 1 SE
    back = g.finish(
        average=0.0, search_epochs=10, start_epoch=4, reference_score=0.30, paired_se=0.02
    )
    assert back["fell_back"] and "0.0200" in back["fallback_reason"]
    assert g.allowance(0.02) == pytest.approx(0.02)
    assert g.rejected is not None and float(g.rejected["additive"][0]) == 1.0
    # the same numbers under a keep rule (keep_z = 2): a loss on S_V always falls back
    d = _guard(z=0.0, keep_z=2.0)
    d.start(0.40)
    with torch.no_grad():
        d.space.raw["additive"].fill_(1.0)
    d.last_score = 0.33
    assert d.finish(
        average=0.0, search_epochs=10, start_epoch=4, reference_score=0.30, paired_se=0.05
    )["fell_back"]


def test_a_negative_keep_z_from_scratch_check_tolerates_noise_and_catches_harm() -> None:
    eng = _engine(**{"guard.keep_z": -1.0})
    rebuild = _rebuild(eng)
    y = eng.s_val.y
    with torch.no_grad():
        eng.space.raw["additive"].fill_(0.7)
    # a reference that is right on every S_V row: any error of the from-scratch θ is a loss,
    # tolerated up to 1 paired SE
    report = eng._check_from_scratch(y, rebuild, {"fell_back": False})
    score, se = report["from_scratch_val_score"], report["from_scratch_paired_se"]
    assert report["fell_back"] == (score > se)
    # a reference wrong on every row: never harm
    wrong = (y + 1) % 4
    with torch.no_grad():
        eng.space.raw["additive"].fill_(0.7)
    assert not eng._check_from_scratch(wrong, rebuild, {"fell_back": False})["fell_back"]


def test_the_reference_theta_has_its_own_momentum_buffers() -> None:
    """The reference θ is forked from the search's θ with a copy of its optimiser state: a
    reference step must leave the search's momentum untouched (and vice versa). Before the fix
    ``load_state_dict`` shared the buffers, so each trajectory moved the other."""
    from autobalance.guard import ReferenceTrajectory

    torch.manual_seed(0)
    model = nn.Linear(3, 2)

    def rebuild(m: nn.Module):
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)

    opt, sched = rebuild(model)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()  # the search's momentum buffers now exist
    before = [opt.state[p]["momentum_buffer"].clone() for p in model.parameters()]
    ref = ReferenceTrajectory(model, opt, sched, rebuild, loss=None)
    ref_params = list(ref.model.parameters())
    assert all(
        ref.optimizer.state[q]["momentum_buffer"].data_ptr()
        != opt.state[p]["momentum_buffer"].data_ptr()
        for p, q in zip(model.parameters(), ref_params)
    )
    ref.optimizer.zero_grad()
    nn.functional.cross_entropy(ref.model(x), 1 - y).backward()
    ref.optimizer.step()
    for p, b in zip(model.parameters(), before):
        assert torch.equal(opt.state[p]["momentum_buffer"], b)
    for p, q in zip(model.parameters(), ref_params):  # only the reference moved
        assert not torch.equal(p, q)


def test_a_fallback_retrains_exactly_the_fixed_loss_training_of_its_seed() -> None:
    """α′ is re-centred on S's counts and the retrain draws ``fit``'s batches: a search that
    falls back hands back the very model ``fit`` trains with the init loss (LA), weight for
    weight, not another draw of it."""
    from autobalance import fit, make_loss

    train = long_tailed_gaussians(num_classes=4, dim=8, n_max=60, imbalance_ratio=10, seed=1)
    tc = TrainConfig(epochs=4, batch_size=16, warmup_epochs=0)
    cfg = SearchConfig(seed=3, train=tc)
    cfg.guard.fallback_margin = -2.0  # no α* can gain 2 in a score within [0, 1]: fall back

    def model_fn() -> nn.Module:
        return make_model("mlp", 4, in_features=8, hidden=(16,))

    res = AutoBalanceSearch(cfg, model_fn, train).run()
    assert res.guard["fell_back"]
    torch.manual_seed(3)
    la = model_fn()
    fit(la, make_loss("la", class_counts=train.class_counts()), train, tc, seed=3)
    for a, b in zip(res.model.state_dict().values(), la.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_fallback_keeps_the_rejected_alpha_that_the_fallback_off_run_returns() -> None:
    """Nothing the search found is lost: a fallback hands back the init, and ``rejected_alpha``
    is exactly the α* that the same run with the fallback off keeps (on the retrain's counts)."""
    train = long_tailed_gaussians(num_classes=4, dim=8, n_max=60, imbalance_ratio=10, seed=1)
    tc = TrainConfig(epochs=4, batch_size=16, warmup_epochs=0)

    def model_fn() -> nn.Module:
        return make_model("mlp", 4, in_features=8, hidden=(16,))

    def run(fallback: bool):
        cfg = SearchConfig(seed=3, train=tc)
        cfg.guard.fallback_margin = -2.0  # the guard rejects every α*
        cfg.guard.fallback = fallback
        return AutoBalanceSearch(cfg, model_fn, train).run()

    on, off = run(True), run(False)
    assert on.guard["fell_back"] and off.guard["would_fall_back"] and not off.guard["fell_back"]
    assert off.rejected_alpha is None and off.rejected_loss_module() is None
    assert on.rejected_alpha is not None
    init = make_loss("la", class_counts=train.class_counts())
    torch.testing.assert_close(on.alpha["additive"], init.additive)  # α* is the init (LA)
    for k, v in off.alpha.items():
        torch.testing.assert_close(on.rejected_alpha[k], v)
    assert not torch.allclose(on.rejected_alpha["additive"], on.alpha["additive"])
    loss = on.rejected_loss_module()
    assert loss is not None
    torch.testing.assert_close(loss.effective_additive, off.alpha["additive"])


def test_paired_balanced_error_se_counts_tiny_classes_as_uncertain() -> None:
    from autobalance.guard import paired_balanced_error_se, paired_score_se
    from autobalance.metrics import balanced_error

    # large classes: the Jeffreys-smoothed formula agrees with the stratified bootstrap
    gen = torch.Generator().manual_seed(0)
    y = torch.cat([torch.full((n,), c) for c, n in enumerate((400, 300, 200))])
    a = torch.where(torch.rand(len(y), generator=gen) < 0.3, (y + 1) % 3, y)
    b = torch.where(torch.rand(len(y), generator=gen) < 0.2, (y + 2) % 3, a)

    def score(pred: torch.Tensor, rows: torch.Tensor) -> float:
        return balanced_error(y[rows], pred, num_classes=3)

    boot = paired_score_se(score, a, b, y, draws=3000, seed=2)
    assert paired_balanced_error_se(y, a, b) == pytest.approx(boot, rel=0.1)
    # one validation image in a class, and the two models disagree on it: the bootstrap
    # cannot see that a 1/K flip is noise (SE 0), the smoothed variance can
    y1, a1, b1 = torch.tensor([0, 0, 0, 0, 1]), torch.tensor([0, 0, 0, 0, 1]), torch.tensor([0] * 5)
    exact = math.sqrt(0.5 / 5 / 4 + (1.5 / 2 - 1 / 4) / 1) / 2  # v_k / n_k per class
    assert paired_balanced_error_se(y1, a1, b1) == pytest.approx(exact)

    def score1(pred: torch.Tensor, rows: torch.Tensor) -> float:
        return balanced_error(y1[rows], pred, num_classes=2)

    assert paired_score_se(score1, a1, b1, y1) == 0.0


def test_an_alpha_that_never_moved_is_not_a_fallback() -> None:
    # α* = α₀ (e.g. every hyper-step skipped): the reference θ *is* that training, so there is
    # nothing to compare, check from scratch, or fall back from, whatever keep_z demands
    g = _guard(z=0.0, keep_z=2.0, check_from_scratch=False)
    g.start(0.40)
    g.last_score = 0.45
    assert g.at_init()
    rep = g.finish(average=0.0, search_epochs=10, start_epoch=4, reference_score=0.40)
    assert not rep["fell_back"] and rep["fallback_reason"] is None
    with torch.no_grad():
        g.space.raw["additive"].add_(0.1)
    assert not g.at_init()
    assert g.finish(average=0.0, search_epochs=10, start_epoch=4, reference_score=0.40)["fell_back"]


def test_min_keepable_gain_is_the_keep_rule_at_full_agreement() -> None:
    from autobalance.guard import min_keepable_gain, paired_balanced_error_se

    y = torch.cat([torch.full((n,), c) for c, n in enumerate((40, 6, 1))])
    same = y.clone()  # two models that agree on every image
    assert min_keepable_gain(torch.tensor([40, 6, 1]), 2.0) == pytest.approx(
        2.0 * paired_balanced_error_se(y, same, same)
    )
    # a one-image class alone puts the floor at (z/K)·√¼: 2/3 · ½ = 33 pt of balanced error
    assert min_keepable_gain(torch.tensor([1, 1000, 1000]), 2.0) == pytest.approx(1 / 3, rel=0.01)
    assert _guard(keep_z=2.0).report()["min_keepable_gain"] == pytest.approx(
        min_keepable_gain(torch.tensor([10, 4, 1]), 2.0)
    )


def test_a_search_on_a_tiny_validation_split_warns_up_front(caplog) -> None:
    with caplog.at_level("WARNING", logger="autobalance"):
        _engine(**{"guard.keep_z": 2.0})  # a keep rule that demands a gain S_V cannot show
    assert any("validation split is small" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="autobalance"):
        _engine()  # the default falls back only on harm: nothing to warn about up front
    assert not any("validation split is small" in r.getMessage() for r in caplog.records)
