"""Classification metrics for imbalanced and group-sensitive evaluation.

All metrics take hard predictions (class ids, e.g. ``logits.argmax(1)``), not scores, given as
torch tensors, numpy arrays or lists. With ``y`` the true class, ``ŷ`` the prediction and ``g``
the group, the quantities follow AutoBalance (Li et al., NeurIPS 2021, arXiv:2201.01212):

- standard error            ``Err = P(ŷ ≠ y)``;
- weighted standard error   ``E(f) = Σ_{k,g} π_{k,g} Err_{k,g}`` with π a reference (e.g. the
  training) distribution over (class, group) cells (§4: the error a balanced test set reports
  for the training distribution);
- class-conditional error   ``Err_k = P(ŷ ≠ y | y = k)``;
- balanced error            ``Err_bal = (1/K) Σ_k Err_k`` (Sec. 3, the long-tail objective);
- (class, group) cell error ``Err_{k,g} = P(ŷ ≠ y | y = k, g)``;
- worst-group error         ``max_{k,g} Err_{k,g}``;
- group-balanced error      ``mean_{k,g} Err_{k,g}``;
- DEO (eq. 4.1)             ``Σ_k (max_g Err_{k,g} − min_g Err_{k,g})``, which for K = G = 2 is
  ``|Err_{+,1} − Err_{+,2}| + |Err_{−,1} − Err_{−,2}|``.

A class or cell without samples has an undefined error: it is reported as NaN, left out of every
average, maximum and DEO term, and announced with an :class:`EmptyCellWarning`.
"""

from __future__ import annotations

import warnings

import numpy as np
from torch import Tensor

from autobalance.labels import as_label_array, count_ids
from autobalance.typing import ArrayLike

__all__ = [
    "EmptyCellWarning",
    "as_label_array",
    "balanced_error",
    "cell_errors",
    "class_errors",
    "deo",
    "error",
    "evaluate_predictions",
    "group_balanced_error",
    "per_class_accuracy",
    "weighted_error",
    "worst_group_error",
]


class EmptyCellWarning(UserWarning):
    """A class or (class, group) cell has no samples, so its error is undefined (NaN)."""


_resolve_count = count_ids


def _prepare(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    yt = as_label_array(y_true, "y_true")
    yp = as_label_array(y_pred, "y_pred")
    if yt.shape != yp.shape:
        raise ValueError(f"y_true has {yt.size} entries but y_pred has {yp.size}")
    if yt.size == 0:
        raise ValueError("cannot evaluate an empty set of predictions")
    return yt, yp, _resolve_count((yt, yp), num_classes, "classes")


def _prepare_groups(
    yt: np.ndarray, groups: ArrayLike, num_groups: int | None
) -> tuple[np.ndarray, int]:
    g = as_label_array(groups, "groups")
    if g.shape != yt.shape:
        raise ValueError(f"groups has {g.size} entries but y_true has {yt.size}")
    return g, _resolve_count((g,), num_groups, "groups")


def _warn(message: str, stacklevel: int) -> None:
    warnings.warn(message, EmptyCellWarning, stacklevel=stacklevel + 1)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ``numerator / denominator`` with NaN where the denominator is 0."""
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _class_table(yt: np.ndarray, yp: np.ndarray, k: int) -> np.ndarray:
    # Err_k = #{i : y_i = k, ŷ_i ≠ k} / #{i : y_i = k}
    mistakes = np.bincount(yt, weights=(yt != yp).astype(np.float64), minlength=k)
    return _ratio(mistakes, np.bincount(yt, minlength=k).astype(np.float64))


def _cell_table(yt: np.ndarray, yp: np.ndarray, g: np.ndarray, k: int, n_groups: int) -> np.ndarray:
    # Err_{k,g} over the flattened cell index k·G + g
    cell = yt * n_groups + g
    mistakes = np.bincount(cell, weights=(yt != yp).astype(np.float64), minlength=k * n_groups)
    totals = np.bincount(cell, minlength=k * n_groups).astype(np.float64)
    return _ratio(mistakes, totals).reshape(k, n_groups)


def _warn_empty_classes(table: np.ndarray, stacklevel: int) -> None:
    empty = np.flatnonzero(np.isnan(table)).tolist()
    if empty:
        _warn(f"no samples for classes {empty}; their error is NaN and left out", stacklevel + 1)


def _warn_empty_cells(table: np.ndarray, stacklevel: int) -> None:
    empty = [(int(a), int(b)) for a, b in np.argwhere(np.isnan(table))]
    if empty:
        _warn(
            f"no samples for (class, group) cells {empty}; their error is NaN and left out",
            stacklevel + 1,
        )


def _checked_cell_table(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    num_classes: int | None,
    num_groups: int | None,
) -> np.ndarray:
    """Validated (K, G) cell-error table; warns (at the public caller's caller) on empty cells."""
    yt, yp, k = _prepare(y_true, y_pred, num_classes)
    g, n_groups = _prepare_groups(yt, groups, num_groups)
    table = _cell_table(yt, yp, g, k, n_groups)
    _warn_empty_cells(table, stacklevel=3)
    return table


def _deo_from_cells(table: np.ndarray, stacklevel: int) -> float:
    # DEO = Σ_k (max_g Err_{k,g} − min_g Err_{k,g}) over classes with ≥ 2 non-empty groups
    terms: list[float] = []
    skipped: list[int] = []
    for k, row in enumerate(table):
        row = row[~np.isnan(row)]
        if row.size < 2:
            skipped.append(k)
        else:
            terms.append(float(row.max() - row.min()))
    if skipped:
        _warn(f"DEO skips classes {skipped}: fewer than 2 groups with samples", stacklevel + 1)
    return float(np.sum(terms)) if terms else float("nan")


def error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Standard error ``P(ŷ ≠ y) = (1/N) Σ_i 1[ŷ_i ≠ y_i]``."""
    yt, yp, _ = _prepare(y_true, y_pred, None)
    return float(np.mean(yt != yp))


def class_errors(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None
) -> np.ndarray:
    """Class-conditional errors ``Err_k = P(ŷ ≠ k | y = k)``, float64 (K,).

    ``K`` is ``num_classes`` or ``max(y_true, y_pred) + 1``. Classes without samples get NaN and
    an :class:`EmptyCellWarning` naming them.
    """
    yt, yp, k = _prepare(y_true, y_pred, num_classes)
    table = _class_table(yt, yp, k)
    _warn_empty_classes(table, stacklevel=2)
    return table


def per_class_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None
) -> np.ndarray:
    """Per-class accuracy (recall) ``1 − Err_k``, float64 (K,), NaN for empty classes."""
    yt, yp, k = _prepare(y_true, y_pred, num_classes)
    table = _class_table(yt, yp, k)
    _warn_empty_classes(table, stacklevel=2)
    return 1.0 - table


def balanced_error(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> float:
    """Balanced error ``(1/K') Σ_k Err_k`` over the ``K'`` classes that have samples.

    AutoBalance, Sec. 3 (the long-tail test objective); equals ``1 − balanced accuracy``.
    Empty classes are left out with an :class:`EmptyCellWarning`.
    """
    yt, yp, k = _prepare(y_true, y_pred, num_classes)
    table = _class_table(yt, yp, k)
    _warn_empty_classes(table, stacklevel=2)
    return float(np.nanmean(table))


def cell_errors(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    num_classes: int | None = None,
    num_groups: int | None = None,
) -> np.ndarray:
    """(Class, group) errors ``Err_{k,g} = P(ŷ ≠ y | y = k, g)``, float64 (K, G).

    Empty cells get NaN and an :class:`EmptyCellWarning` naming them (AutoBalance, Sec. 4).
    """
    table = _checked_cell_table(y_true, y_pred, groups, num_classes, num_groups)
    return table


def worst_group_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    num_classes: int | None = None,
    num_groups: int | None = None,
) -> float:
    """Worst (class, group) error ``max_{k,g} Err_{k,g}`` over non-empty cells."""
    table = _checked_cell_table(y_true, y_pred, groups, num_classes, num_groups)
    return float(np.nanmax(table))


def group_balanced_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    num_classes: int | None = None,
    num_groups: int | None = None,
) -> float:
    """Group-balanced error ``mean_{k,g} Err_{k,g}`` over non-empty (class, group) cells."""
    table = _checked_cell_table(y_true, y_pred, groups, num_classes, num_groups)
    return float(np.nanmean(table))


def deo(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    num_classes: int | None = None,
    num_groups: int | None = None,
) -> float:
    """Difference of equal opportunity on errors, AutoBalance eq. (4.1), symmetric form.

    ``DEO = Σ_k (max_g Err_{k,g} − min_g Err_{k,g})``, taken over non-empty cells; for K = G = 2
    this is ``|Err_{+,1} − Err_{+,2}| + |Err_{−,1} − Err_{−,2}|``. Classes with fewer than two
    non-empty groups are skipped with an :class:`EmptyCellWarning`; NaN if every class is skipped.
    """
    table = _checked_cell_table(y_true, y_pred, groups, num_classes, num_groups)
    return _deo_from_cells(table, stacklevel=2)


def _weighted_from_cells(table: np.ndarray, weights: ArrayLike) -> float:
    # Σ π_{k,g} Err_{k,g} / Σ π_{k,g} over the cells that have test samples
    w = np.asarray(weights.detach().cpu() if isinstance(weights, Tensor) else weights, float)
    if w.shape != table.shape:
        raise ValueError(f"weights must have shape (K, G) = {table.shape}, got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and ≥ 0")
    present = ~np.isnan(table)
    total = float(w[present].sum())
    if total <= 0:
        return float("nan")
    return float((w[present] * table[present]).sum() / total)


def weighted_error(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    weights: ArrayLike,
    num_classes: int | None = None,
    num_groups: int | None = None,
) -> float:
    """Standard error re-weighted to a reference distribution, AutoBalance §4:
    ``E(f) = Σ_{k,g} π_{k,g} Err_{k,g}(f) / Σ_{k,g} π_{k,g}``.

    ``weights`` is the (K, G) table π (counts or proportions; it is normalised over the cells
    that have test samples). With π the test set's own cell proportions this is the plain error
    rate; with the training proportions it is the paper's standard error on a test set balanced
    over cells.
    """
    table = _checked_cell_table(y_true, y_pred, groups, num_classes, num_groups)
    return _weighted_from_cells(table, weights)


def evaluate_predictions(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike | None = None,
    num_classes: int | None = None,
    num_groups: int | None = None,
    cell_weights: ArrayLike | None = None,
) -> dict[str, float | list]:
    """Every applicable metric in one flat dict, as training loops log it.

    Keys: ``error``, ``balanced_error``, ``worst_class_error`` and ``class_errors`` (list, K);
    with ``groups`` also ``group_balanced_error``, ``worst_group_error``, ``deo`` (eq. 4.1),
    ``cell_errors`` (K lists of G) and ``empirical_error`` (the plain rate). With
    ``cell_weights`` π (K, G), ``error`` is :func:`weighted_error`'s ``Σ π_{k,g} Err_{k,g}``
    (AutoBalance §4) instead of the plain rate. Undefined entries are NaN; each kind of empty
    class/cell is warned about once.
    """
    yt, yp, k = _prepare(y_true, y_pred, num_classes)
    per_class = _class_table(yt, yp, k)
    _warn_empty_classes(per_class, stacklevel=2)
    out: dict[str, float | list] = {
        "error": float(np.mean(yt != yp)),
        "balanced_error": float(np.nanmean(per_class)),
        "worst_class_error": float(np.nanmax(per_class)),
        "class_errors": per_class.tolist(),
    }
    if groups is not None:
        g, n_groups = _prepare_groups(yt, groups, num_groups)
        cells = _cell_table(yt, yp, g, k, n_groups)
        _warn_empty_cells(cells, stacklevel=2)
        out["group_balanced_error"] = float(np.nanmean(cells))
        out["worst_group_error"] = float(np.nanmax(cells))
        out["deo"] = _deo_from_cells(cells, stacklevel=2)
        out["cell_errors"] = cells.tolist()
        out["empirical_error"] = out["error"]
        if cell_weights is not None:
            out["error"] = _weighted_from_cells(cells, cell_weights)
    return out
