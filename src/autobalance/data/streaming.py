"""Datasets that do not fit in memory: any map-style torch ``Dataset``, streamed by ``DataLoader``.

:class:`StreamingDataset` wraps a map-style ``torch.utils.data.Dataset`` whose items are
``(x, y)`` or ``(x, y, group)``. Its labels (and groups) are read **once**, from the dataset's
``labels`` / ``targets`` attribute when it has one (torchvision folders, the library's image
lists), else by one pass over the items; the split, the counts and the class-balanced sampling
of the search use only them, never the images. Batches are loaded by a ``DataLoader`` with
workers and pinned memory, in the order of :class:`StreamLoader`: epoch ``e`` visits
``randperm(N)`` from a generator seeded with ``seed + e``, exactly as
:class:`~autobalance.data.loader.TensorLoader` does on an :class:`InMemoryDataset`, so the same
data give the same batches either way. Worker ``w`` of epoch ``e`` seeds torch's global
generator (which the library's image datasets draw their random crops from) from
``(seed, e, w)``.

An optional ``eval_dataset`` (the same items with the evaluation transform) serves the
validation batches and the evaluation passes: S_V is scored on clean inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from autobalance.data.loader import EpochOrder
from autobalance.labels import label_tensor
from autobalance.typing import Device

Batch = tuple[Tensor, Tensor, Tensor | None]


def read_labels(
    dataset: Dataset, *, with_groups: bool | None = None
) -> tuple[Tensor, Tensor | None]:
    """``(labels, groups or None)`` of a map-style dataset, read once.

    A ``labels`` or ``targets`` attribute (and ``groups``) is used as is; otherwise every item is
    loaded once and its second (and third) entry kept. ``with_groups=False`` ignores a third
    entry.
    """
    for attr in ("labels", "targets"):
        y = getattr(dataset, attr, None)
        if y is not None and not callable(y):
            g = getattr(dataset, "groups", None)
            if with_groups is False or g is None or callable(g):
                return torch.as_tensor(np.asarray(y)), None
            return torch.as_tensor(np.asarray(y)), torch.as_tensor(np.asarray(g))
    ys: list[int] = []
    gs: list[int] = []
    n = len(dataset)  # type: ignore[arg-type]
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise ValueError(
                f"dataset item {i} must be (x, y) or (x, y, group), got {type(item).__name__}"
                + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else "")
            )
        ys.append(_scalar(item[1], i, "label"))
        if len(item) == 3 and with_groups is not False:
            gs.append(_scalar(item[2], i, "group"))
    if gs and len(gs) != len(ys):
        raise ValueError("some dataset items have a group and others do not")
    return torch.as_tensor(ys), (torch.as_tensor(gs) if gs else None)


def _scalar(value: Any, index: int, what: str) -> int:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"dataset item {index}: the {what} must be a scalar")
        if value.is_floating_point():
            raise ValueError(f"dataset item {index}: the {what} is a float ({value.item()})")
        return int(value.item())
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    raise ValueError(
        f"dataset item {index}: the {what} must be an integer id, got {type(value).__name__} "
        f"{value!r}"
    )


class StreamingDataset:
    """A map-style torch dataset seen through its labels, for the search and the training loop.

    Args:
        dataset: items ``(x, y)`` or ``(x, y, group)``; ``x`` a tensor (or anything the
            ``collate_fn`` stacks).
        labels, groups: the ids, when known (else read once, :func:`read_labels`).
        num_classes, num_groups: K and G (default: max id + 1).
        eval_dataset: the same items with the evaluation transform (default ``dataset``).
        indices: the rows of ``dataset`` this view holds (``subset`` composes them).
        num_workers, pin_memory, collate_fn: passed to every ``DataLoader``.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        labels: Any = None,
        groups: Any = None,
        num_classes: int | None = None,
        num_groups: int | None = None,
        eval_dataset: Dataset | None = None,
        indices: Tensor | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        class_names: Sequence[str] = (),
        group_names: Sequence[str] = (),
        name: str = "dataset",
        error_weights: Tensor | None = None,
    ) -> None:
        self.dataset = dataset
        self.eval_dataset = eval_dataset if eval_dataset is not None else dataset
        total = len(dataset)  # type: ignore[arg-type]
        if labels is None:
            labels, read_groups = read_labels(dataset)
            groups = read_groups if groups is None else groups
        y_all, self.num_classes = label_tensor(labels, num_classes, name=f"{name}: labels")
        if y_all.numel() != total:
            raise ValueError(f"{name}: {y_all.numel()} labels for {total} items")
        self.indices = torch.arange(total) if indices is None else torch.as_tensor(indices)
        self.y = y_all[self.indices]
        self.groups: Tensor | None = None
        self.num_groups = 1
        if groups is not None:
            g_all, self.num_groups = label_tensor(
                groups, num_groups, what="groups", name=f"{name}: groups"
            )
            if g_all.numel() != total:
                raise ValueError(f"{name}: {g_all.numel()} groups for {total} items")
            self.groups = g_all[self.indices]
        self._y_all, self._g_all = y_all, (None if groups is None else g_all)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.collate_fn = collate_fn
        self.class_names = list(class_names)
        self.group_names = list(group_names)
        self.name = name
        self.error_weights = error_weights

    def __len__(self) -> int:
        return int(self.indices.numel())

    def subset(self, index: Tensor) -> StreamingDataset:
        """Rows ``index`` of this view, as a new view on the same dataset."""
        out = object.__new__(StreamingDataset)
        out.__dict__.update(self.__dict__)
        out.indices = self.indices[torch.as_tensor(index, dtype=torch.long)]
        out.y = self._y_all[out.indices]
        out.groups = None if self._g_all is None else self._g_all[out.indices]
        return out

    def class_counts(self) -> Tensor:
        """Samples per class, int64 (K,)."""
        return torch.bincount(self.y, minlength=self.num_classes)

    # ------------------------------------------------------------------ loading
    def _loader(self, order: Sampler[list[int]], *, train: bool, seed: int) -> DataLoader:
        source = self.dataset if train else self.eval_dataset
        return DataLoader(
            source,
            batch_sampler=order,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=self.collate_fn,
            worker_init_fn=_WorkerSeed(seed) if self.num_workers else None,
            persistent_workers=False,
        )

    def fetch(self, index: Tensor, *, train: bool = True, seed: int = 0) -> Batch:
        """The batch of rows ``index`` (positions in this view), loaded in one ``DataLoader``
        call: ``(x, y, groups or None)`` on the CPU. ``train=False`` reads ``eval_dataset``.
        ``seed`` seeds the items' random transforms."""
        rows = self.indices[torch.as_tensor(index, dtype=torch.long)].tolist()
        batch = self._next(iter(self._loader(_Fixed([rows]), train=train, seed=seed)), seed)
        return _unpack(batch)

    def _next(self, batches: Iterator[Any], seed: int) -> Any:
        """The next batch. Without workers the items' random transforms draw from this
        process's global generator: it is seeded with ``seed`` for this batch alone (and
        restored after), so a batch's crops depend on (seed, epoch, step), not on what ran
        before, and a resumed run draws what an uninterrupted one drew."""
        if self.num_workers:
            return next(batches)  # workers are seeded per (epoch, worker): _WorkerSeed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return next(batches)

    def batches(
        self, batch_size: int, *, train: bool = False, order: Tensor | None = None, seed: int = 0
    ) -> Iterator[Batch]:
        """Batches of ``batch_size`` rows in ``order`` (positions; default 0..N−1)."""
        pos = torch.arange(len(self)) if order is None else order
        rows = self.indices[pos].tolist()
        chunks = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
        for batch in self._loader(_Fixed(chunks), train=train, seed=seed):
            yield _unpack(batch)


def _unpack(batch: Any) -> Batch:
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError("the dataset's items must collate to (x, y) or (x, y, group)")
    x, y = batch[0], torch.as_tensor(batch[1]).long()
    g = torch.as_tensor(batch[2]).long() if len(batch) == 3 else None
    return x, y, g


class _Fixed(Sampler[list[int]]):
    """A batch sampler over fixed index lists."""

    def __init__(self, chunks: list[list[int]]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.chunks)

    def __len__(self) -> int:
        return len(self.chunks)


class _WorkerSeed:
    """``worker_init_fn``: torch's global generator of worker w ← hash(seed, w)."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def __call__(self, worker: int) -> None:
        torch.manual_seed((self.seed * 1_000_003 + worker + 1) % (2**63 - 1))


class StreamLoader(EpochOrder):
    """:class:`~autobalance.data.loader.TensorLoader`'s interface over a
    :class:`StreamingDataset`: the same epoch orders (:class:`EpochOrder`: ``randperm`` seeded
    with ``seed + e``), resumable mid-epoch, with ``DataLoader`` workers doing the loading.
    Batches go to ``device`` (non-blocking from pinned memory on CUDA)."""

    def __init__(
        self,
        data: StreamingDataset,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        device: Device = "cpu",
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self._init_order(batch_size, shuffle, drop_last, seed, rank, world)
        self.data = data
        self.device = torch.device(device)

    @property
    def total_samples(self) -> int:
        """N, the rows of the data."""
        return len(self.data)

    def __iter__(self) -> Iterator[Batch]:
        perm = self.order()
        start, stop = self.batch_index, len(self)
        chunks = [
            self.data.indices[perm[i * self.batch_size : (i + 1) * self.batch_size]].tolist()
            for i in range(start, stop)
        ]
        epoch_seed = self.seed * 7919 + self.epoch
        batches = iter(self.data._loader(_Fixed(chunks), train=True, seed=epoch_seed))
        for i in range(start, stop):
            batch = self.data._next(batches, (epoch_seed * 1_000_003 + i) % (2**63 - 1))
            self.batch_index = i + 1
            x, y, g = _unpack(batch)
            yield self._to(x), self._to(y), (None if g is None else self._to(g))
        self.set_epoch(self.epoch + 1)

    def _to(self, t: Tensor) -> Tensor:
        if self.device.type == "cuda" and t.device.type == "cpu":
            return t.to(self.device, non_blocking=t.is_pinned())
        return t.to(self.device)


__all__ = ["StreamLoader", "StreamingDataset", "read_labels"]
