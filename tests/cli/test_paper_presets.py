"""The CIFAR presets follow the paper's protocol (Li et al. 2021, arXiv 2201.01212, Sec. 3).

``cifar10-lt`` / ``cifar100-lt``: ResNet-32, 300 epochs, SGD lr 0.1, momentum 0.9, wd 1e-4, ×0.1
at epochs 220 and 260; hyper-steps after epoch 120; α by SGD lr 0.05, momentum 0.9, wd 1e-4,
decayed with θ; 80/20 split, balanced CE; the official hyper-step; retrain on all data; no
guard. ``cifar10-lt-ldam`` / ``cifar100-lt-ldam`` keep LDAM-DRW's 200-epoch schedule.
"""

from __future__ import annotations

import math

import pytest

from autobalance.config import HyperConfig, to_dict
from autobalance.presets import load_config, preset_names
from autobalance.train import decay_factor

# θ-steps per epoch of the 80/20 search split and of the full retrain set, CIFAR10-LT and
# CIFAR100-LT at ρ = 100 (12,406 and 10,847 images), batch 128; and a wider range for safety.
STEPS = (78, 68, 97, 85, *range(1, 400, 7))


@pytest.mark.parametrize("name", ["cifar10-lt", "cifar100-lt"])
def test_paper_preset_is_the_papers_protocol(name: str) -> None:
    cfg = load_config(preset=name)
    s = cfg.search
    assert cfg.model.name == "resnet32"
    assert cfg.dataset.name == name.replace("-", "_") and cfg.dataset.imbalance_ratio == 100
    t = s.train
    assert (t.epochs, t.batch_size, t.lr, t.momentum, t.weight_decay) == (300, 128, 0.1, 0.9, 1e-4)
    assert t.lr_decay == 0.1
    # the learning rate drops exactly at the first step of epochs 220 and 260
    for steps in STEPS:
        factors = [decay_factor(t, steps, e * steps) for e in (219, 220, 259, 260)]
        before = [decay_factor(t, steps, e * steps - 1) for e in (220, 260)]
        assert factors == pytest.approx([1.0, 0.1, 0.1, 0.01]), steps
        assert before == pytest.approx([1.0, 0.1]), steps
    assert round(s.hyper_start * t.epochs) == 120
    assert s.val_fraction == 0.2 and s.objective == "balanced_ce" and s.retrain
    a = s.alpha
    assert (a.optimizer, a.lr, a.momentum, a.weight_decay, a.schedule) == (
        "sgd",
        0.05,
        0.9,
        1e-4,
        "follow",
    )
    assert a.average == 0.0 and a.clip_norm is None and not a.normalize
    assert to_dict(s.hyper) == to_dict(HyperConfig.official())
    assert not s.guard.enabled
    assert s.space.search == ("additive", "multiplicative") and s.space.init == "la"
    # retrain: the official code's 200 epochs, ×0.1 at 160 and 180, same SGD
    r = s.retrain_config()
    assert (r.epochs, r.lr, r.momentum, r.weight_decay, r.lr_decay) == (200, 0.1, 0.9, 1e-4, 0.1)
    assert [math.floor(m * r.epochs) for m in r.milestones] == [160, 180]
    assert t.warmup_epochs == r.warmup_epochs == 5
    assert cfg.loss_options["ldam_drw"]["drw_epoch"] == 220


def test_paper_search_spaces() -> None:
    # CIFAR10-LT: l and Δ of each class (20 hyper-parameters); CIFAR100-LT: clusters of 10
    c10 = load_config(preset="cifar10-lt").search.space
    assert c10.kind == "full"
    assert sum(p.numel() for p in c10.build([100 - 10 * k for k in range(10)]).hparams()) == 20
    c100 = load_config(preset="cifar100-lt").search.space
    assert (c100.kind, c100.cluster_size) == ("clusters", 10)
    space = c100.build([500 - 4 * k for k in range(100)])
    assert space.num_clusters == 10 and sum(p.numel() for p in space.hparams()) == 20


@pytest.mark.parametrize("name", ["cifar10-lt-ldam", "cifar100-lt-ldam"])
def test_ldam_schedule_presets_are_kept(name: str) -> None:
    cfg = load_config(preset=name)
    t = cfg.search.train
    assert (t.epochs, t.weight_decay, t.warmup_epochs, t.milestones, t.lr_decay) == (
        200,
        2e-4,
        5,
        (0.8, 0.9),
        0.01,
    )
    assert cfg.search.hyper_start == 0.4 and cfg.search.retrain_train is None
    assert "LDAM-DRW" in cfg.description and "not the paper" in cfg.description
    assert cfg.loss_options["ldam_drw"]["drw_epoch"] == 160
    assert {"cifar10-lt", "cifar100-lt", name} <= set(preset_names())
