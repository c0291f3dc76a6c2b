"""Class labels and group ids: one place that turns user input into checked int64 ids.

Every entry point (metrics, counts, splits, the long-tail construction, the dataset adapters)
reads labels through :func:`as_label_array` / :func:`label_tensor`, so a float label, a 2-D label
array or an id out of ``[0, K)`` gets the same one-line error wherever it comes in. This module
sits below ``data/`` and ``metrics``: it imports neither.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from autobalance.typing import ArrayLike


def as_label_array(values: ArrayLike, name: str = "labels") -> np.ndarray:
    """Integer ids (class labels, predictions or groups) as a 1-D int64 numpy array.

    Accepts tensors (any device), numpy arrays, pandas Series and sequences of ints or bools,
    of any integer width. Raises ``ValueError`` for NaN, for non-integer (float, object) dtypes
    and for arrays that are not 1-D. Range checks against ``[0, K)`` are left to the caller,
    which knows ``K`` (:func:`count_ids`).
    """
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(np.int64)
    if kind in "iu":
        if kind == "u" and array.dtype.itemsize == 8 and int(array.max()) > np.iinfo(np.int64).max:
            raise ValueError(f"{name}: id {int(array.max())} does not fit in int64")
        return array.astype(np.int64, copy=False)
    if kind in "fc" and np.isnan(array).any():
        raise ValueError(f"{name} contain NaN")
    raise ValueError(
        f"{name} must be integer ids (int or bool dtype), got dtype {array.dtype}; "
        "cast them with .long() / .astype(int) first (or encode string labels, e.g. with "
        "sklearn.preprocessing.LabelEncoder)"
    )


def count_ids(arrays: Sequence[np.ndarray], given: int | None, what: str) -> int:
    """Number of ids ``K`` (``given``, or max id + 1), after checking every id lies in
    ``[0, K)``; ``what`` names them in errors (``classes``, ``groups``)."""
    arrays = [a for a in arrays if a.size]
    if not arrays:
        if given is None:
            raise ValueError(f"cannot infer the number of {what} from no ids")
        return _positive(given, what)
    low = min(int(a.min()) for a in arrays)
    high = max(int(a.max()) for a in arrays)
    if low < 0:
        raise ValueError(f"{what} ids must be non-negative, got minimum {low}")
    if given is None:
        return high + 1
    k = _positive(given, what)
    if high >= k:
        raise ValueError(f"{what} ids must lie in [0, {k}), got maximum {high}")
    return k


def _positive(given: object, what: str) -> int:
    if isinstance(given, bool) or not isinstance(given, (int, np.integer)) or given < 1:
        raise ValueError(f"num_{what} must be a positive integer, got {given!r}")
    return int(given)


def label_tensor(
    values: ArrayLike, num: int | None = None, *, what: str = "classes", name: str = "labels"
) -> tuple[Tensor, int]:
    """``(ids as an int64 CPU tensor, K)``: :func:`as_label_array` then :func:`count_ids`."""
    array = as_label_array(values, name)
    k = count_ids([array], num, what)
    return torch.tensor(array, dtype=torch.int64), k  # a copy: the caller's array may be read-only


__all__ = ["as_label_array", "count_ids", "label_tensor"]
