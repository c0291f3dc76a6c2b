"""Bring users' data to the engine: :func:`as_dataset`.

The search and the training loop take an :class:`InMemoryDataset` (tensors, the fast path) or a
:class:`StreamingDataset` (any map-style torch ``Dataset``, loaded by ``DataLoader``).
:func:`as_dataset` builds one of them from what users have:

- an :class:`InMemoryDataset` or :class:`StreamingDataset`: returned as is;
- a ``torch.utils.data.DataLoader``: its dataset, with its ``num_workers``, ``pin_memory`` and
  ``collate_fn`` (the engine draws its own batches: the loader's sampler and batch size are not
  used);
- a ``torch.utils.data.TensorDataset`` of ``(x, y)`` or ``(x, y, groups)`` tensors: in memory;
- numpy arrays / torch tensors ``X`` with ``y`` (and ``groups``): in memory;
- a pandas ``DataFrame``: in memory; ``y`` (and ``groups``) are arrays or column names (those
  columns are then dropped from the features); every feature column must be numeric;
- any other map-style ``Dataset`` yielding ``(x, y)`` or ``(x, y, group)``: streamed
  (``labels=`` / ``groups=`` skip the one pass that reads them).

K (``num_classes``) is inferred as max label + 1 unless given. Labels of any integer width are
accepted; float labels, NaN and ids outside ``[0, K)`` raise one ``ValueError`` that says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from autobalance.data.dataset import InMemoryDataset
from autobalance.data.streaming import StreamingDataset
from autobalance.labels import label_tensor

LabelledData = InMemoryDataset | StreamingDataset


def _features(x: Any) -> Tensor:
    if isinstance(x, Tensor):
        t = x.detach().cpu()
    else:
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise ValueError(
                f"features must be numeric, got dtype {arr.dtype}; encode categorical columns "
                "first (e.g. pandas.get_dummies or sklearn's OneHotEncoder)"
            )
        t = torch.tensor(arr)  # a copy (a DataFrame's values may be read-only)
    if t.ndim == 1:
        raise ValueError(f"features must have one row per sample (2-D or more), got {t.ndim}-D")
    if t.dtype == torch.uint8 and t.ndim == 4:
        return t  # images stay uint8 (N, C, H, W)
    return t.float() if not t.is_floating_point() or t.dtype == torch.float64 else t


def _column(frame: Any, spec: Any, what: str) -> tuple[Any, list[str]]:
    """(values, columns to drop) for ``y``/``groups`` given as a column name or as values."""
    if isinstance(spec, str):
        if spec not in frame.columns:
            raise ValueError(f"{what} column {spec!r} is not in the DataFrame")
        return frame[spec].to_numpy(), [spec]
    return spec, []


def as_dataset(
    data: Any,
    y: Any = None,
    groups: Any = None,
    *,
    num_classes: int | None = None,
    num_groups: int | None = None,
    name: str = "data",
    **streaming: Any,
) -> LabelledData:
    """The engine's dataset for ``data`` (see the module docstring for what is accepted).

    ``streaming`` keywords (``num_workers``, ``pin_memory``, ``eval_dataset``, ``collate_fn``,
    ``labels``) apply to a generic torch ``Dataset``.
    """
    if isinstance(data, (InMemoryDataset, StreamingDataset)):
        if y is not None or groups is not None:
            raise ValueError("y / groups are already part of this dataset; do not pass them")
        return data
    if isinstance(data, torch.utils.data.DataLoader):
        streaming.setdefault("num_workers", data.num_workers)
        streaming.setdefault("pin_memory", data.pin_memory)
        if data.collate_fn is not torch.utils.data.default_collate:
            streaming.setdefault("collate_fn", data.collate_fn)
        data = data.dataset
        if isinstance(data, torch.utils.data.TensorDataset):
            streaming.clear()  # tensors: the in-memory path
    if isinstance(data, torch.utils.data.TensorDataset):
        tensors = data.tensors
        if len(tensors) not in (2, 3):
            raise ValueError(
                f"a torch TensorDataset must hold (x, y) or (x, y, groups), got {len(tensors)}"
            )
        data, y = tensors[0], tensors[1]
        groups = tensors[2] if len(tensors) == 3 else groups
    if _is_frame(data):
        if y is None:
            raise ValueError("a DataFrame needs y= (the label values or the label column name)")
        y, drop_y = _column(data, y, "label")
        drop_g: list[str] = []
        if groups is not None:
            groups, drop_g = _column(data, groups, "group")
        data = data.drop(columns=drop_y + drop_g)
    if isinstance(data, Dataset) and not isinstance(data, torch.utils.data.TensorDataset):
        labels = streaming.pop("labels", y)
        return StreamingDataset(
            data,
            labels=labels,
            groups=groups,
            num_classes=num_classes,
            num_groups=num_groups,
            name=name,
            **streaming,
        )
    if streaming:
        raise ValueError(f"options {sorted(streaming)} only apply to a streamed torch Dataset")
    if y is None:
        raise ValueError(
            f"cannot read labels from {type(data).__name__}: give y= (or pass an "
            "InMemoryDataset, a torch Dataset of (x, y) items, or a DataFrame with y=)"
        )
    x = _features(data)
    labels_t, k = label_tensor(y, num_classes, name=f"{name}: labels")
    if labels_t.numel() != x.shape[0]:
        raise ValueError(f"{name}: {x.shape[0]} rows of features but {labels_t.numel()} labels")
    g_t, g_count = None, 1
    if groups is not None:
        g_t, g_count = label_tensor(groups, num_groups, what="groups", name=f"{name}: groups")
        if g_t.numel() != x.shape[0]:
            raise ValueError(f"{name}: {x.shape[0]} rows of features but {g_t.numel()} groups")
    return InMemoryDataset(
        x=x, y=labels_t, num_classes=k, groups=g_t, num_groups=g_count, name=name
    )


def _is_frame(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "columns")


__all__ = ["LabelledData", "as_dataset"]
