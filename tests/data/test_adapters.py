"""The data path: every input kind through `as_dataset`, labels read once, streaming = in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from autobalance import SearchConfig, search
from autobalance.data import (
    ClassBalancedSampler,
    InMemoryDataset,
    StreamingDataset,
    StreamLoader,
    TensorLoader,
    as_dataset,
    class_index,
    long_tailed_gaussians,
)
from autobalance.models import make_model


class Items(Dataset):
    """A map-style dataset over tensors that counts item reads (no labels attribute)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, g: torch.Tensor | None = None) -> None:
        self.x, self.y, self.g = x, y, g
        self.reads = 0

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        self.reads += 1
        if self.g is None:
            return self.x[i], self.y[i]
        return self.x[i], self.y[i], self.g[i]


class Labelled(Items):
    """The same with a ``targets`` attribute, as torchvision folders have."""

    @property
    def targets(self) -> list[int]:
        return self.y.tolist()


def _xy(n: int = 40, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)).astype(np.float32), rng.integers(0, k, n)


def test_numpy_tensor_torch_tensordataset_and_dataloader() -> None:
    x, y = _xy()
    a = as_dataset(x, y)
    assert isinstance(a, InMemoryDataset) and a.num_classes == 3 and a.x.dtype == torch.float32
    b = as_dataset(torch.from_numpy(x), torch.from_numpy(y).to(torch.int8))
    c = as_dataset(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)))
    d = as_dataset(DataLoader(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))))
    for other in (b, c, d):
        assert isinstance(other, InMemoryDataset)
        assert torch.equal(other.x, a.x) and torch.equal(other.y, a.y)
    g = np.arange(40) % 2
    e = as_dataset(
        torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y), torch.tensor(g))
    )
    assert e.groups is not None and e.num_groups == 2
    assert as_dataset(a) is a
    # uint16 labels, a wider K than the labels show
    f = as_dataset(x, y.astype(np.uint16), num_classes=5)
    assert f.num_classes == 5 and f.y.dtype == torch.int64


def test_dataframe_with_label_and_group_columns() -> None:
    x, y = _xy()
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    frame["label"] = y
    frame["sex"] = np.arange(40) % 2
    ds = as_dataset(frame, "label", "sex")
    assert ds.x.shape == (40, 5) and torch.equal(ds.y, torch.from_numpy(y))
    assert ds.groups is not None and ds.num_groups == 2
    ds2 = as_dataset(frame.drop(columns=["label", "sex"]), y)
    assert torch.equal(ds2.x, ds.x)
    with pytest.raises(ValueError, match="not in the DataFrame"):
        as_dataset(frame, "nope")
    bad = frame.assign(city=["a"] * 40)
    with pytest.raises(ValueError, match="numeric"):
        as_dataset(bad, "label")


def test_bad_labels_get_one_clear_error() -> None:
    x, y = _xy()
    with pytest.raises(ValueError, match="integer ids"):
        as_dataset(x, y.astype(float))
    with pytest.raises(ValueError, match=r"lie in \[0, 2\)"):
        as_dataset(x, y, num_classes=2)
    with pytest.raises(ValueError, match="non-negative"):
        as_dataset(x, y - 1)
    with pytest.raises(ValueError, match="40 rows of features but 39 labels"):
        as_dataset(x, y[:-1])
    with pytest.raises(ValueError, match="give y="):
        as_dataset(x)
    items = Items(torch.zeros(3, 2), torch.tensor([0, 1, 0]))
    items.y = torch.tensor([0.5, 1.0, 0.0])  # float labels inside the items
    with pytest.raises(ValueError, match="float"):
        as_dataset(items)


def test_generic_dataset_is_streamed_and_its_labels_read_once() -> None:
    x, y = _xy()
    items = Items(torch.from_numpy(x), torch.from_numpy(y), torch.arange(40) % 2)
    ds = as_dataset(items)
    assert isinstance(ds, StreamingDataset) and items.reads == 40  # one pass for the labels
    assert ds.num_classes == 3 and ds.groups is not None and ds.num_groups == 2
    sub = ds.subset(torch.tensor([5, 7, 9]))
    assert torch.equal(sub.y, torch.from_numpy(y[[5, 7, 9]]))
    xb, _, gb = sub.fetch(torch.tensor([2, 0]))
    assert torch.equal(xb, torch.from_numpy(x[[9, 5]])) and gb is not None
    labelled = Labelled(torch.from_numpy(x), torch.from_numpy(y))
    as_dataset(labelled)
    assert labelled.reads == 0  # `targets` attribute: no item loaded


def test_stream_loader_matches_tensor_loader_order() -> None:
    x, y = _xy(n=37)
    mem = as_dataset(x, y)
    stream = as_dataset(Items(torch.from_numpy(x), torch.from_numpy(y)))
    a = TensorLoader(mem, batch_size=8, seed=3)
    b = StreamLoader(stream, batch_size=8, seed=3)
    assert len(a) == len(b) == 5
    for epoch in range(2):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        for (xa, ya, _), (xb, yb, _) in zip(a, b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # resumable mid-epoch, like TensorLoader
    b.set_epoch(0)
    it = iter(b)
    next(it)
    state = b.state_dict()
    b2 = StreamLoader(stream, batch_size=8, seed=3)
    b2.load_state_dict(state)
    assert torch.equal(next(iter(b2))[0], next(it)[0])


def test_stream_loader_with_workers() -> None:
    x, y = _xy(n=20)
    stream = as_dataset(Items(torch.from_numpy(x), torch.from_numpy(y)), num_workers=2)
    batches = list(StreamLoader(stream, batch_size=6, seed=0))
    got = torch.cat([b[1] for b in batches])
    order = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(got, torch.from_numpy(y)[order])


def test_class_balanced_sampler() -> None:
    labels = torch.tensor([0] * 50 + [1] * 5 + [2] * 1)
    index = class_index(labels)
    sampler = ClassBalancedSampler(index, 9, torch.Generator().manual_seed(0))
    batch = sampler.draw()
    assert torch.equal(torch.bincount(labels[batch], minlength=3), torch.tensor([3, 3, 3]))
    assert len(next(iter(sampler))) == 9
    with pytest.raises(ValueError, match="empty"):
        ClassBalancedSampler([torch.tensor([], dtype=torch.long)], 4, torch.Generator())


def _config() -> SearchConfig:
    cfg = SearchConfig()
    cfg.train.epochs = 3
    cfg.train.batch_size = 32
    cfg.train.warmup_epochs = 0
    cfg.hyper.interval = 2
    cfg.hyper.val_sampling = "balanced"
    cfg.guard.reference = False
    cfg.guard.check_from_scratch = False
    return cfg


def test_search_streamed_equals_in_memory() -> None:
    train = long_tailed_gaussians(num_classes=3, dim=6, n_max=60, imbalance_ratio=10, seed=0)

    def model_fn() -> torch.nn.Module:
        return make_model("mlp", 3, in_features=6, hidden=(8,))

    a = search(_config(), model_fn, train)
    items = Items(train.x, train.y)
    b = search(_config(), model_fn, items)
    c = search(_config(), model_fn, (train.x.numpy(), train.y.numpy()))
    for comp in ("additive", "multiplicative"):
        torch.testing.assert_close(a.alpha[comp], b.alpha[comp], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(a.alpha[comp], c.alpha[comp], rtol=0, atol=0)
