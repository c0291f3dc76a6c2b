"""In-memory labelled dataset: the fast path of the engine, returned by the bundled loaders.

It was called ``TensorDataset`` before 0.2, which shadowed ``torch.utils.data.TensorDataset``;
the old name still imports, with a ``DeprecationWarning``. Any map-style torch ``Dataset``,
numpy arrays or a pandas DataFrame go in through :func:`autobalance.data.as_dataset`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class InMemoryDataset:
    """Features, labels and optional group ids held as tensors.

    ``x`` is float (N, ...) or uint8 images (N, C, H, W); ``y`` is int64 (N,) in [0, K);
    ``groups`` is int64 (N,) in [0, G) or ``None`` for the class-only setting.
    ``error_weights`` (optional, grouped data only) is a (K, G) table of reference proportions
    π_{y,g} (for a test set: the training distribution's) that weights the standard error,
    ``E(f) = Σ π_{y,g} E_{y,g}(f)`` (AutoBalance §4); ``None`` means the plain error rate.
    """

    x: Tensor
    y: Tensor
    num_classes: int
    groups: Tensor | None = None
    num_groups: int = 1
    class_names: list[str] = field(default_factory=list)
    group_names: list[str] = field(default_factory=list)
    name: str = "dataset"
    error_weights: Tensor | None = None

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"{self.name}: x has {self.x.shape[0]} rows but y has {self.y.shape[0]}"
            )
        if self.y.dtype != torch.long:
            raise ValueError(f"{self.name}: labels must be int64, got {self.y.dtype}")
        if self.y.numel() and (int(self.y.min()) < 0 or int(self.y.max()) >= self.num_classes):
            raise ValueError(
                f"{self.name}: labels must lie in [0, {self.num_classes}), "
                f"got range [{int(self.y.min())}, {int(self.y.max())}]"
            )
        if self.groups is not None:
            if self.groups.shape != self.y.shape:
                raise ValueError(
                    f"{self.name}: groups has shape {tuple(self.groups.shape)}, "
                    f"labels {tuple(self.y.shape)}"
                )
            if self.groups.numel() and (
                int(self.groups.min()) < 0 or int(self.groups.max()) >= self.num_groups
            ):
                raise ValueError(f"{self.name}: group ids must lie in [0, {self.num_groups})")
        if self.error_weights is not None:
            self._check_error_weights(self.error_weights)
        if self.x.is_floating_point() and not bool(torch.isfinite(self.x).all()):
            raise ValueError(f"{self.name}: features contain NaN or infinite values")

    def _check_error_weights(self, w: Tensor) -> None:
        if self.groups is None:
            raise ValueError(f"{self.name}: error_weights need group ids")
        if tuple(w.shape) != (self.num_classes, self.num_groups):
            raise ValueError(
                f"{self.name}: error_weights must have shape (K, G) = "
                f"({self.num_classes}, {self.num_groups}), got {tuple(w.shape)}"
            )
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError(f"{self.name}: error_weights must be finite, ≥ 0 and not all 0")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: Tensor) -> InMemoryDataset:
        """Rows ``index`` of this dataset, as a new dataset sharing the metadata."""
        index = torch.as_tensor(index, dtype=torch.long)
        return InMemoryDataset(
            x=self.x[index],
            y=self.y[index],
            num_classes=self.num_classes,
            groups=None if self.groups is None else self.groups[index],
            num_groups=self.num_groups,
            class_names=list(self.class_names),
            group_names=list(self.group_names),
            name=self.name,
            error_weights=self.error_weights,
        )

    def class_counts(self) -> Tensor:
        """Samples per class, int64 (K,)."""
        return torch.bincount(self.y, minlength=self.num_classes)


def __getattr__(name: str) -> object:
    if name == "TensorDataset":
        import warnings

        warnings.warn(
            "autobalance.data.TensorDataset is now InMemoryDataset (it shadowed "
            "torch.utils.data.TensorDataset); the old name will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        return InMemoryDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
