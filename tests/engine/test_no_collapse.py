"""No silent collapse (issue 8): across problems and seeds the default search never ends far
worse than its LA initialisation, and a search pushed to fail says so and falls back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from autobalance import SearchConfig, evaluate, fit, make_loss, make_model, search
from autobalance.data import InMemoryDataset, load_digits_lt, long_tailed_gaussians
from autobalance.search import AutoBalanceSearch
from autobalance.train import TrainConfig

TRAIN = TrainConfig(epochs=20, batch_size=32, lr=0.05, warmup_epochs=1, weight_decay=5e-4)
Problem = Callable[[int], tuple[InMemoryDataset, InMemoryDataset]]


def _gauss(k: int, rho: float, dim: int, n_max: int, sep: float) -> Problem:
    def make(seed: int) -> tuple[InMemoryDataset, InMemoryDataset]:
        kw = {"num_classes": k, "dim": dim, "imbalance_ratio": rho, "n_max": n_max}
        kw |= {"separation": sep, "seed": seed}
        return long_tailed_gaussians(**kw), long_tailed_gaussians(split="test", **kw)

    return make


PROBLEMS: dict[str, Problem] = {
    "gaussians K=10 rho=100": _gauss(10, 100, 32, 300, 2.5),
    "gaussians K=5 rho=20": _gauss(5, 20, 16, 200, 2.0),
    "digits rho=50": lambda seed: load_digits_lt(seed=seed),
}


def _mlp(train: InMemoryDataset) -> Callable[[], torch.nn.Module]:
    return lambda: make_model("mlp", train.num_classes, in_features=train.x.shape[1], hidden=(64,))


def _la_error(train: InMemoryDataset, test: InMemoryDataset, seed: int) -> float:
    torch.manual_seed(seed)
    model = _mlp(train)()
    fit(model, make_loss("la", class_counts=train.class_counts()), train, TRAIN, seed=seed)
    return evaluate(model, test)["balanced_error"]


def _config(seed: int) -> SearchConfig:
    cfg = SearchConfig(seed=seed, train=TRAIN)  # the library's default search
    cfg.hyper.interval = 2  # small data: enough hyper-steps
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_default_search_never_ends_far_worse_than_la(name: str) -> None:
    # The pre-issue-8 settings with α lr 0.5 ended +0.13 to +0.51 worse than LA on every seed
    # (collapse). The default (α weight decay 0.1, a fallback only on harm beyond one paired SE
    # on S_V) keeps α* near LA: on fresh small-problem seeds 32-47 its worst seed was +2.2 pt
    # (benchmarks/README.md). A fallback retrains exactly LA's model: its difference is 0.
    torch.set_num_threads(1)
    diffs, kept = [], []
    for seed in (11, 12, 13):
        train, test = PROBLEMS[name](seed)
        la = _la_error(train, test, seed)
        res = search(_config(seed), _mlp(train), train)
        diffs.append(evaluate(res.model, test)["balanced_error"] - la)
        assert set(res.guard) >= {"fell_back", "rollbacks", "spikes_clipped"}
        if res.guard["fell_back"]:
            assert diffs[-1] == 0.0, diffs  # LA's own model, not another draw of it
        kept.append(not res.guard["fell_back"])
    assert max(diffs) < 0.02, (diffs, kept)


def test_a_search_driven_the_wrong_way_rolls_back_and_falls_back_to_its_init() -> None:
    torch.set_num_threads(1)
    train, _ = PROBLEMS["gaussians K=10 rho=100"](0)
    cfg = _config(0)
    cfg.alpha.lr = 1.0
    eng = AutoBalanceSearch(cfg, _mlp(train), train)
    objective = eng.objective
    eng.objective = lambda logits, y, g: -objective(logits, y, g)  # ascend the val loss
    res = eng.run()
    guard = res.guard
    assert guard["fell_back"], guard
    assert "worse than" in guard["fallback_reason"]
    assert guard["rollbacks"] >= 1 and guard["events"][0]["event"] == "rollback"
    assert guard["final_val_score"] > guard["reference_val_score"]
    # α* is exactly the LA init
    init = eng.guard.alpha0
    for k, v in eng.space.raw.items():
        torch.testing.assert_close(v.detach(), init[k])
    # and without the guard the same run keeps the damaged α
    cfg_off = _config(0)
    cfg_off.alpha.lr = 1.0
    cfg_off.guard.enabled = False
    off = AutoBalanceSearch(cfg_off, _mlp(train), train)
    off.objective = lambda logits, y, g: -objective(logits, y, g)
    res_off = off.run()
    assert not res_off.guard["fell_back"]
    moved = max(float(v.detach().abs().max()) for v in off.space.raw.values())
    assert moved > 1.0
