from __future__ import annotations

import pytest
import torch

from autobalance.data.dataset import InMemoryDataset
from autobalance.data.loader import TensorLoader, infinite


def make(n: int = 10, groups: bool = True) -> InMemoryDataset:
    return InMemoryDataset(
        x=torch.arange(n, dtype=torch.float32).unsqueeze(1) * 10,
        y=torch.arange(n) % 3,
        num_classes=3,
        groups=(torch.arange(n) % 2) if groups else None,
        num_groups=2,
    )


def test_epoch_order_is_randperm_seeded_with_seed_plus_epoch() -> None:
    loader = TensorLoader(make(), batch_size=4, seed=5)
    assert len(loader) == 3
    for epoch in range(3):
        rows = torch.cat([x[:, 0] / 10 for x, _, _ in loader]).long()
        want = torch.randperm(10, generator=torch.Generator().manual_seed(5 + epoch))
        assert torch.equal(rows, want)
    assert loader.epoch == 3


def test_batches_carry_matching_labels_and_groups() -> None:
    ds = make()
    for x, y, g in TensorLoader(ds, batch_size=3, seed=0):
        idx = (x[:, 0] / 10).long()
        assert torch.equal(y, ds.y[idx]) and torch.equal(g, ds.groups[idx])
    batches = list(TensorLoader((ds.x, ds.y), batch_size=4, shuffle=False, drop_last=True))
    assert len(batches) == 2 and batches[0][2] is None
    assert batches[1][1].tolist() == [1, 2, 0, 1]  # rows 4..7 in order: (4..7) mod 3


def test_resume_mid_epoch_from_state_dict() -> None:
    ds = make(23)
    ref = TensorLoader(ds, batch_size=4, seed=1)
    ref.set_epoch(2)
    full = [y.clone() for _, y, _ in ref]
    run = TensorLoader(ds, batch_size=4, seed=1)
    run.set_epoch(2)
    it = iter(run)
    first = [next(it)[1] for _ in range(3)]
    state = run.state_dict()
    assert state == {"epoch": 2, "batch_index": 3, "seed": 1}
    resumed = TensorLoader(ds, batch_size=4, seed=99)
    resumed.load_state_dict(state)
    rest = [y for _, y, _ in resumed]
    assert all(torch.equal(a, b) for a, b in zip(first + rest, full))
    assert len(first + rest) == len(full) == 6 and resumed.epoch == 3


def test_infinite_crosses_epochs() -> None:
    loader = TensorLoader(make(5, groups=False), batch_size=2, seed=0)
    it = infinite(loader)
    seen = [next(it)[0] for _ in range(7)]
    assert loader.epoch == 2  # 3 batches per epoch: two epochs done, third started
    assert sorted(torch.cat(seen[:3])[:, 0].tolist()) == [0, 10, 20, 30, 40]
    with pytest.raises(ValueError, match="empty loader"):
        next(infinite(TensorLoader(make(3), batch_size=4, drop_last=True)))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        TensorLoader(make(), batch_size=0)
    with pytest.raises(ValueError, match="same number of rows"):
        TensorLoader((torch.zeros(3, 1), torch.zeros(4, dtype=torch.long)), batch_size=2)
    with pytest.raises(ValueError, match=r"\(x, y\) or \(x, y, groups\)"):
        TensorLoader((torch.zeros(3),), batch_size=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batches_move_to_cuda() -> None:
    x, y, g = next(iter(TensorLoader(make(), batch_size=4, device="cuda")))
    assert x.is_cuda and y.is_cuda and g is not None and g.is_cuda
