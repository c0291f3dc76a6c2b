"""θ optimiser choice and factories, cosine schedule, mixed precision, gradient clipping."""

from __future__ import annotations

import math

import pytest
import torch

from autobalance import SearchConfig, search
from autobalance.data import long_tailed_gaussians
from autobalance.models import make_model
from autobalance.train import TrainConfig, decay_factor, fit, make_optimizer, make_scheduler


def _data():
    return long_tailed_gaussians(num_classes=3, dim=6, n_max=40, imbalance_ratio=5, seed=0)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return make_model("mlp", 3, in_features=6, hidden=(8,))


def test_optimizer_by_name_dotted_path_and_options() -> None:
    m = _model()
    assert isinstance(make_optimizer(m, TrainConfig()), torch.optim.SGD)
    opt = make_optimizer(m, TrainConfig(optimizer="adamw", optimizer_options={"betas": (0.8, 0.9)}))
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["betas"] == (0.8, 0.9)
    assert isinstance(
        make_optimizer(m, TrainConfig(optimizer="torch.optim.RMSprop")), torch.optim.RMSprop
    )
    with pytest.raises(ValueError, match="dotted path"):
        TrainConfig(optimizer="lbfgs!")
    with pytest.raises(ValueError, match=r"not a torch\.optim\.Optimizer"):
        make_optimizer(m, TrainConfig(optimizer="torch.nn.Linear"))
    with pytest.raises(ValueError, match="cannot be imported"):
        make_optimizer(m, TrainConfig(optimizer="nowhere.Optim"))
    with pytest.raises(ValueError, match=r"train\.optimizer"):
        make_optimizer(m, TrainConfig(optimizer="adam", optimizer_options={"nope": 1}))


def test_cosine_and_constant_schedules() -> None:
    cfg = TrainConfig(epochs=10, schedule="cosine", warmup_epochs=0)
    assert decay_factor(cfg, 10, 0) == 1.0
    assert decay_factor(cfg, 10, 50) == pytest.approx(0.5)
    assert decay_factor(cfg, 10, 100) == pytest.approx(0.0, abs=1e-12)
    assert decay_factor(TrainConfig(schedule="constant"), 10, 290) == 1.0
    opt = make_optimizer(_model(), cfg)
    sched = make_scheduler(opt, cfg, 10)
    for _ in range(25):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_on_cpu(precision: str) -> None:
    cfg = TrainConfig(epochs=2, batch_size=16, warmup_epochs=0, precision=precision)
    model = _model()
    records = fit(model, torch.nn.CrossEntropyLoss(), _data(), cfg)
    assert all(math.isfinite(r["train_loss"]) for r in records)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")


def test_bf16_search_runs_with_an_fp32_hyper_step() -> None:
    cfg = SearchConfig()
    cfg.train.epochs = 2
    cfg.train.batch_size = 16
    cfg.train.warmup_epochs = 0
    cfg.train.precision = "bf16"
    cfg.hyper.interval = 2
    cfg.guard.reference = False
    cfg.guard.check_from_scratch = False
    result = search(cfg, _model, _data())
    assert all(bool(torch.isfinite(v).all()) for v in result.alpha.values())
    assert result.alpha["additive"].dtype == torch.float32


def test_grad_clip_bounds_each_step() -> None:
    cfg = TrainConfig(
        epochs=1, batch_size=200, lr=1.0, momentum=0.0, weight_decay=0.0, warmup_epochs=0
    )
    cfg.grad_clip = 1e-3
    model = _model()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    fit(model, torch.nn.CrossEntropyLoss(), _data(), cfg)  # one batch: one step
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert float((after - before).norm()) <= 1e-3 * 1.0001
    with pytest.raises(ValueError, match="grad_clip"):
        TrainConfig(grad_clip=0.0)


def test_factories_through_the_api() -> None:
    calls: list[str] = []

    def opt_factory(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
        calls.append("opt")
        return torch.optim.Adam(model.parameters(), lr=1e-2)

    def sched_factory(opt: torch.optim.Optimizer, cfg: TrainConfig, steps: int):
        calls.append("sched")
        return torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0)

    cfg = SearchConfig()
    cfg.train.epochs = 2
    cfg.train.batch_size = 16
    cfg.hyper.interval = 2
    cfg.guard.reference = False
    cfg.guard.check_from_scratch = False
    search(cfg, _model, _data(), optimizer_factory=opt_factory, scheduler_factory=sched_factory)
    assert calls.count("opt") >= 2 and calls.count("sched") >= 2  # search and retrain
