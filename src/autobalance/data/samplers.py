"""Index samplers over labels: the hyper-step's class-balanced validation batches.

A class- (or (class, group) cell-) balanced batch of size n draws ⌈n / C⌉ positions uniformly
with replacement from each of the C non-empty classes (cells), so every class weighs the same in
the validation objective whatever its frequency (the balanced S_V sampling of AutoBalance's
hyper-step). Only label indices are touched; the rows are then loaded by the dataset (tensor
gathering in memory, a ``DataLoader`` when streamed).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Sampler


def class_index(labels: Tensor, groups: Tensor | None = None, num_groups: int = 1) -> list[Tensor]:
    """Positions of each non-empty class (or cell ``y·G + g`` with groups), in label order."""
    key = labels if groups is None else labels * num_groups + groups
    return [torch.nonzero(key == c).flatten() for c in torch.unique(key)]


class ClassBalancedSampler(Sampler[list[int]]):
    """Endless class-balanced batches of positions (a ``batch_sampler`` for ``DataLoader``).

    Args:
        index: per class (or cell), its positions (:func:`class_index`).
        batch_size: n; each batch holds ⌈n / C⌉ draws per class, C = ``len(index)``.
        generator: the seeded source of the draws.
    """

    def __init__(
        self, index: Sequence[Tensor], batch_size: int, generator: torch.Generator
    ) -> None:
        if not index or any(len(i) == 0 for i in index):
            raise ValueError("ClassBalancedSampler needs at least one class, none of them empty")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.index = list(index)
        self.per_class = max(1, math.ceil(int(batch_size) / len(self.index)))
        self.generator = generator

    def draw(self) -> Tensor:
        """One batch: ``per_class`` positions of every class, int64."""
        picks = [
            idx[torch.randint(len(idx), (self.per_class,), generator=self.generator)]
            for idx in self.index
        ]
        return torch.cat(picks)

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            yield self.draw().tolist()


__all__ = ["ClassBalancedSampler", "class_index"]
