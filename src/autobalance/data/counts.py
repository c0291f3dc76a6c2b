"""Class and (class, group) counts: the statistics every imbalance-aware loss starts from.

The class priors ``π_k = n_k / n`` feed the logit-adjusted and AutoBalance losses (Li et al.,
NeurIPS 2021, arXiv:2201.01212, eq. 2.2) and the (class, group) table ``n_{k,g}`` feeds the
group losses (eq. 4.2). A training set with an empty class has ``log π_k = −∞``, so by default an
empty class (or cell) is an error here rather than a silent NaN further down.
"""

from __future__ import annotations

import numpy as np

from autobalance.labels import as_label_array
from autobalance.typing import ArrayLike

__all__ = ["class_counts", "class_frequencies", "group_counts"]


def _num_ids(ids: np.ndarray, given: int | None, what: str) -> int:
    """``K`` from ``given`` or ``max + 1``, after checking ids lie in ``[0, K)``."""
    if given is not None and (
        isinstance(given, bool) or not isinstance(given, (int, np.integer)) or given < 1
    ):
        raise ValueError(f"num_{what} must be a positive integer, got {given!r}")
    if ids.size == 0:
        if given is None:
            raise ValueError(f"cannot infer num_{what} from an empty array; pass it explicitly")
        return int(given)
    low, high = int(ids.min()), int(ids.max())
    if low < 0:
        raise ValueError(f"{what} ids must be non-negative, got minimum {low}")
    if given is None:
        return high + 1
    if high >= given:
        raise ValueError(f"{what} ids must lie in [0, {given}), got maximum {high}")
    return int(given)


def class_counts(
    labels: ArrayLike, num_classes: int | None = None, *, allow_empty: bool = False
) -> np.ndarray:
    """Samples per class ``n_k = #{i : y_i = k}``, int64 (K,).

    ``K`` is ``num_classes`` or ``max(labels) + 1``. Labels must be integers in ``[0, K)``.
    An empty class raises ``ValueError`` unless ``allow_empty=True`` (use that for test sets).
    """
    y = as_label_array(labels, "labels")
    k = _num_ids(y, num_classes, "classes")
    counts = np.bincount(y, minlength=k).astype(np.int64)
    empty = np.flatnonzero(counts == 0).tolist()
    if empty and not allow_empty:
        raise ValueError(
            f"classes {empty} have no samples; pass allow_empty=True if that is intended"
        )
    return counts


def class_frequencies(
    labels: ArrayLike, num_classes: int | None = None, *, allow_empty: bool = False
) -> np.ndarray:
    """Empirical class priors ``π_k = n_k / Σ_j n_j``, float64 (K,) summing to 1."""
    counts = class_counts(labels, num_classes, allow_empty=allow_empty)
    total = counts.sum()
    if total == 0:
        raise ValueError("cannot compute class frequencies of an empty label array")
    return counts / float(total)


def group_counts(
    labels: ArrayLike,
    groups: ArrayLike,
    num_classes: int | None = None,
    num_groups: int | None = None,
    *,
    allow_empty: bool = False,
) -> np.ndarray:
    """(Class, group) table ``n_{k,g} = #{i : y_i = k, g_i = g}``, int64 (K, G).

    Empty cells raise ``ValueError`` unless ``allow_empty=True``.
    """
    y = as_label_array(labels, "labels")
    g = as_label_array(groups, "groups")
    if y.shape != g.shape:
        raise ValueError(f"labels has {y.size} entries but groups has {g.size}")
    k = _num_ids(y, num_classes, "classes")
    n_groups = _num_ids(g, num_groups, "groups")
    table = np.bincount(y * n_groups + g, minlength=k * n_groups).reshape(k, n_groups)
    table = table.astype(np.int64)
    empty = [(int(a), int(b)) for a, b in np.argwhere(table == 0)]
    if empty and not allow_empty:
        raise ValueError(
            f"(class, group) cells {empty} have no samples; "
            "pass allow_empty=True if that is intended"
        )
    return table
