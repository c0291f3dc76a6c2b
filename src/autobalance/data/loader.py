"""Seeded, resumable mini-batches over in-memory tensors, with no per-sample Python work.

Epoch ``e`` visits the rows in the order ``randperm(N)`` drawn from a ``torch.Generator`` seeded
with ``seed + e`` (or ``0..N−1`` without shuffling), in slices of ``batch_size``. The loader
counts epochs and batches itself, so ``state_dict()`` taken mid-epoch resumes at the next batch
with the same order, and :meth:`TensorLoader.set_epoch` makes epochs explicit (as
``DistributedSampler`` does).

On an accelerator the tensors are copied to the device once (:func:`device_copy`, cached per
source tensor, so the search's one-epoch loaders share one copy); each epoch's order is drawn on
the host, as on the CPU (the same order on every device), and sent over once; the batches are
then gathered on the device, with no host copy and no host synchronisation per batch.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from autobalance.data.dataset import InMemoryDataset
from autobalance.distributed import shard_order
from autobalance.typing import Device

Batch = tuple[Tensor, Tensor, Tensor | None]

# Tensors up to this size are kept whole on the loader's device; larger ones are sent batch by
# batch (from pinned memory on CUDA), as before.
DEVICE_RESIDENT_MAX_BYTES = 4 << 30

# (id(source), device) -> (weak reference to the source, its version, the device copy)
_DEVICE_COPIES: dict[tuple[int, str], tuple[weakref.ref[Tensor], int, Tensor]] = {}


def device_copy(t: Tensor, device: Device) -> Tensor:
    """``t`` on ``device``, copied once and then reused while ``t`` lives and is unchanged.

    The copy is cached under the source tensor (weakly: it is freed with the source) and
    refreshed when an in-place write bumps the source's version counter. A tensor already on
    ``device`` is returned as is.
    """
    dev = torch.device(device)
    if t.device == dev:
        return t
    key = (id(t), str(dev))
    hit = _DEVICE_COPIES.get(key)
    if hit is not None and hit[0]() is t and hit[1] == t._version:
        return hit[2]
    copy = t.to(dev)
    if copy is t:  # already there ("cuda" names the tensor's "cuda:0"): nothing to keep
        return t
    _DEVICE_COPIES[key] = (weakref.ref(t, _forget(key)), t._version, copy)
    return copy


def _forget(key: tuple[int, str]) -> Callable[[weakref.ref[Tensor]], None]:
    """The weakref callback that drops the cached copy of a source that was freed."""
    copies = _DEVICE_COPIES  # bound now: module globals may be gone at interpreter exit

    def forget(_ref: weakref.ref[Tensor]) -> None:
        copies.pop(key, None)

    return forget


def _resident(t: Tensor, device: torch.device) -> Tensor:
    """The whole of ``t`` on ``device`` when it is small enough, else ``t`` where it is."""
    if t.device == device or t.numel() * t.element_size() > DEVICE_RESIDENT_MAX_BYTES:
        return t
    return device_copy(t, device)


class EpochOrder:
    """The seeded, resumable epoch order shared by :class:`TensorLoader` and
    :class:`~autobalance.data.streaming.StreamLoader`.

    Epoch e visits ``randperm(N)`` from a generator seeded with ``seed + e`` (``0..N−1`` without
    shuffling), in slices of ``batch_size``; with ``world`` > 1 processes, rank ``rank`` takes its
    share of that order (:func:`autobalance.distributed.shard_order`). ``batch_index`` is the next
    batch of the current epoch, so ``state_dict()`` taken mid-epoch resumes at the next batch.
    Subclasses give ``total_samples`` (N) and iterate.
    """

    def _init_order(
        self, batch_size: int, shuffle: bool, drop_last: bool, seed: int, rank: int, world: int
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        if not 0 <= int(rank) < int(world):
            raise ValueError(f"rank must lie in [0, world), got rank {rank} of {world}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.epoch = 0
        self.batch_index = 0  # next batch of the current epoch
        self.rank, self.world = int(rank), int(world)  # this process's share (torchrun)

    @property
    def total_samples(self) -> int:
        """N, the rows of the data."""
        raise NotImplementedError

    @property
    def num_samples(self) -> int:
        """Rows this process visits per epoch: N, or ⌈N / W⌉ for one of W ranks."""
        return -(-self.total_samples // self.world)

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its first batch; its order is seeded with ``seed + epoch``."""
        self.epoch = int(epoch)
        self.batch_index = 0

    def order(self, epoch: int | None = None) -> Tensor:
        """Row order of ``epoch`` (default: the current one), int64 (N,); with W ranks, this
        rank's share of it (:func:`autobalance.distributed.shard_order`)."""
        e = self.epoch if epoch is None else int(epoch)
        if not self.shuffle:
            full = torch.arange(self.total_samples)
        else:
            gen = torch.Generator().manual_seed(self.seed + e)
            full = torch.randperm(self.total_samples, generator=gen)
        return shard_order(full, self.rank, self.world)

    def state_dict(self) -> dict[str, Any]:
        """``{"epoch", "batch_index", "seed"}``: enough to resume at the next batch."""
        return {"epoch": self.epoch, "batch_index": self.batch_index, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.batch_index = int(state["batch_index"])


class TensorLoader(EpochOrder):
    """Iterate ``(x, y, groups_or_None)`` batches of a :class:`InMemoryDataset` or tensor tuple.

    ``dataset_or_tensors`` is a ``InMemoryDataset`` or ``(x, y)`` / ``(x, y, groups)``. Tensors up
    to ``DEVICE_RESIDENT_MAX_BYTES`` are copied to ``device`` once (``device_copy``) and batches
    are gathered there with ``index_select``; a larger tensor is gathered on its own device and
    each batch moved (non-blocking from pinned memory when the target is CUDA). A loop that
    stops mid-epoch continues from the next batch on the following ``iter``; ``set_epoch``
    restarts an epoch.
    """

    def __init__(
        self,
        dataset_or_tensors: InMemoryDataset | Sequence[Tensor],
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        device: Device = "cpu",
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if isinstance(dataset_or_tensors, InMemoryDataset):
            x, y, g = dataset_or_tensors.x, dataset_or_tensors.y, dataset_or_tensors.groups
        else:
            tensors = tuple(dataset_or_tensors)
            if len(tensors) not in (2, 3):
                raise ValueError(f"expected (x, y) or (x, y, groups), got {len(tensors)} tensors")
            x, y = tensors[0], tensors[1]
            g = tensors[2] if len(tensors) == 3 else None
        if any(t.shape[0] != x.shape[0] for t in (y, g) if t is not None):
            raise ValueError("x, y and groups must have the same number of rows")
        self._init_order(batch_size, shuffle, drop_last, seed, rank, world)
        self.device = torch.device(device)
        self.x, self.y = _resident(x, self.device), _resident(y, self.device)
        self.groups = None if g is None else _resident(g, self.device)

    @property
    def total_samples(self) -> int:
        """N, the rows of the data."""
        return int(self.x.shape[0])

    def _take(self, t: Tensor, idx: Tensor) -> Tensor:
        out = t.index_select(0, idx.to(t.device))
        if out.device == self.device:
            return out
        if self.device.type == "cuda" and out.device.type == "cpu":
            return out.pin_memory().to(self.device, non_blocking=True)
        return out.to(self.device)

    def __iter__(self) -> Iterator[Batch]:
        perm = self.order()
        if self.x.device != perm.device:  # one host→device copy per epoch, not per batch
            perm = perm.to(self.x.device)
        for i in range(self.batch_index, len(self)):
            idx = perm[i * self.batch_size : (i + 1) * self.batch_size]
            self.batch_index = i + 1
            g = None if self.groups is None else self._take(self.groups, idx)
            yield self._take(self.x, idx), self._take(self.y, idx), g
        self.set_epoch(self.epoch + 1)


def infinite(loader: TensorLoader) -> Iterator[Batch]:
    """Batches forever, epoch after epoch (each pass draws the next epoch's order)."""
    if len(loader) == 0:
        raise ValueError("cannot cycle an empty loader (no full batch with drop_last=True)")
    while True:
        yield from loader


__all__ = [
    "DEVICE_RESIDENT_MAX_BYTES",
    "Batch",
    "EpochOrder",
    "TensorLoader",
    "device_copy",
    "infinite",
]
