"""The accelerator path of the training loop, checked on the CPU.

On a GPU the loop must not wait for the device at every step: the loss sum and the non-finite
check stay on the device (``sync_every_step=False``), the training tensors are copied there once
(``device_copy``) and the normalisation statistics once. The ``meta`` device stands in for an
accelerator where only placement matters.
"""

from __future__ import annotations

import gc

import pytest
import torch
from torch import Tensor, nn

from autobalance import train as train_mod
from autobalance.augment import CIFAR10_MEAN, CIFAR10_STD, Normalize
from autobalance.data import loader as loader_mod
from autobalance.data.dataset import InMemoryDataset
from autobalance.data.loader import TensorLoader, device_copy
from autobalance.losses import make_loss, set_value_checks, value_checks_enabled
from autobalance.train import (
    TrainConfig,
    hot_loop_value_checks,
    make_optimizer,
    make_scheduler,
    train_epoch,
)


def dataset(n: int = 40) -> InMemoryDataset:
    g = torch.Generator().manual_seed(0)
    return InMemoryDataset(x=torch.randn(n, 5, generator=g), y=torch.arange(n) % 3, num_classes=3)


def one_epoch(
    sync: bool | None, loss_fn=None, value_checks: bool | None = None
) -> tuple[object, nn.Module, list[int]]:
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    cfg = TrainConfig(epochs=1, batch_size=8, lr=0.1)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, 5)
    hooks: list[int] = []
    ce = nn.CrossEntropyLoss()
    state = train_epoch(
        model,
        loss_fn or (lambda z, y, g: ce(z, y)),
        TensorLoader(dataset(), batch_size=8, seed=3),
        opt,
        sched,
        step_hook=lambda gs, ls: hooks.append(gs),
        global_step=10,
        sync_every_step=sync,
        value_checks=value_checks,
    )
    return state, model, hooks


def test_deferred_loss_sum_is_bitwise_the_eager_one() -> None:
    eager, m_eager, h_eager = one_epoch(None)  # CPU default: eager
    lazy, m_lazy, h_lazy = one_epoch(False)
    assert lazy.loss == eager.loss  # same float64 sum, same order
    assert (lazy.steps, lazy.accuracy) == (eager.steps, eager.accuracy) == (5, lazy.accuracy)
    assert h_lazy == h_eager == [11, 12, 13, 14, 15]
    for a, b in zip(m_eager.parameters(), m_lazy.parameters()):
        assert torch.equal(a, b)


def test_non_finite_loss_raises_before_the_step_or_at_the_epoch_end() -> None:
    ce = nn.CrossEntropyLoss()
    calls = {"n": 0}

    def nan_at_second(z: Tensor, y: Tensor, g: Tensor | None) -> Tensor:
        calls["n"] += 1
        loss = ce(z, y)
        return loss * float("nan") if calls["n"] == 2 else loss

    with pytest.raises(FloatingPointError, match=r"\(nan\) at step 11;"):
        one_epoch(True, nan_at_second)
    assert calls["n"] == 2  # stopped at once
    calls["n"] = 0
    with pytest.raises(FloatingPointError, match=r"\(nan\) at step 11;"):
        one_epoch(False, nan_at_second)
    assert calls["n"] == 5  # the epoch ran on; the first bad step is reported


def test_value_checks_are_set_for_the_epoch_and_restored_after_it() -> None:
    la = make_loss("la", class_counts=[5, 3, 2])
    seen: list[bool] = []

    def recording(z: Tensor, y: Tensor, g: Tensor | None) -> Tensor:
        seen.append(value_checks_enabled())
        return la(z, y)

    assert value_checks_enabled()
    one_epoch(False, recording, value_checks=False)
    assert seen == [False] * 5 and value_checks_enabled()
    seen.clear()
    one_epoch(None, recording)  # None: the global setting
    assert seen == [True] * 5

    def failing(z: Tensor, y: Tensor, g: Tensor | None) -> Tensor:
        seen.append(value_checks_enabled())
        raise RuntimeError("boom")

    seen.clear()
    with pytest.raises(RuntimeError, match="boom"):
        one_epoch(False, failing, value_checks=False)
    assert seen == [False] and value_checks_enabled()  # restored after the raise
    previous = set_value_checks(False)
    try:
        one_epoch(False, recording, value_checks=True)
        assert seen[-1] is True and not value_checks_enabled()  # the caller's False is back
    finally:
        set_value_checks(previous)


def test_hot_loops_skip_value_checks_only_off_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hot_loop_value_checks("cpu") is None  # free there: the global setting holds
    assert hot_loop_value_checks(torch.device("cpu")) is None
    assert hot_loop_value_checks("cuda:1") is False  # one host sync per step saved
    assert hot_loop_value_checks("mps") is False
    # run_epochs hands the rule's answer for its device to every train_epoch
    passed: list[bool | None] = []
    real = train_mod.train_epoch

    def spy(*args, **kwargs):
        passed.append(kwargs["value_checks"])
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "train_epoch", spy)
    monkeypatch.setattr(train_mod, "hot_loop_value_checks", lambda device: False)
    model = nn.Linear(5, 3)
    cfg = TrainConfig(epochs=2, batch_size=8, lr=0.1)
    opt = make_optimizer(model, cfg)
    ce = nn.CrossEntropyLoss()
    train_mod.run_epochs(
        "train", model, lambda z, y, g: ce(z, y), dataset(), cfg,
        optimizer=opt, scheduler=None, seed=0,
    )  # fmt: skip
    assert passed == [False, False]


def test_device_copy_is_made_once_and_refreshed_after_a_write() -> None:
    t = torch.arange(6.0)
    assert device_copy(t, "cpu") is t
    first = device_copy(t, "meta")
    assert first.device.type == "meta" and first.shape == t.shape
    assert device_copy(t, torch.device("meta")) is first
    t.add_(1)  # bumps the version: a new copy
    second = device_copy(t, "meta")
    assert second is not first and device_copy(t, "meta") is second
    key = (id(t), "meta")
    assert key in loader_mod._DEVICE_COPIES
    del t
    gc.collect()
    assert key not in loader_mod._DEVICE_COPIES  # freed with its source


def test_loader_keeps_the_data_on_its_device_and_gathers_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = dataset(10)
    a = TensorLoader(ds, batch_size=4, seed=1, device="meta")
    b = TensorLoader(ds, batch_size=4, seed=1, device="meta")
    assert a.x.device.type == "meta" and a.y.device.type == "meta"
    assert b.x is a.x and b.y is a.y  # one copy for every loader over the same tensors
    batches = list(a)
    assert [tuple(x.shape) for x, _, _ in batches] == [(4, 5), (4, 5), (2, 5)]
    assert all(x.device.type == "meta" and y.device.type == "meta" for x, y, _ in batches)
    assert a.epoch == 1
    # too large to keep whole: gathered on the host, moved batch by batch
    monkeypatch.setattr(loader_mod, "DEVICE_RESIDENT_MAX_BYTES", 0)
    c = TensorLoader(ds, batch_size=4, seed=1, device="meta")
    assert c.x is ds.x
    assert all(x.device.type == "meta" for x, _, _ in c)


def test_normalize_moves_its_statistics_once_per_device_and_dtype() -> None:
    norm = Normalize(CIFAR10_MEAN, CIFAR10_STD)
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    out = norm(x)
    # stored in float32, cast to the input's dtype (as before the cache)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1).double()
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1).double()
    assert torch.equal(out, (x - mean) / std)
    stats = norm._stats(torch.device("cpu"), torch.float64)
    assert all(a is b for a, b in zip(stats, norm._stats(torch.device("cpu"), torch.float64)))
    on_meta = norm(torch.zeros(2, 3, 4, 4, device="meta"))
    assert on_meta.device.type == "meta"
    meta_stats = norm._stats(torch.device("meta"), torch.float32)
    assert meta_stats[0].device.type == "meta"
    assert norm._stats(torch.device("meta"), torch.float32)[0] is meta_stats[0]
