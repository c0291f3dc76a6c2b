"""Stratified train/validation split for the bilevel search (S_T, S_V).

AutoBalance (Li et al., NeurIPS 2021, arXiv:2201.01212, Algorithm 1) fits the model on ``S_T``
and the loss on ``S_V``; both must contain every class, even the rarest tail class, or the
validation objective (balanced error) is undefined. Each stratum ``s`` (a class, or a
(class, group) cell) of size ``n_s`` sends ``round(n_s · f)`` samples to validation, clipped to
``[1, n_s − 1]``; the paper uses ``f = 0.2`` for long-tailed data and ``f = 0.5`` for groups.
"""

from __future__ import annotations

import numpy as np

from autobalance.data.counts import class_counts
from autobalance.labels import as_label_array
from autobalance.typing import ArrayLike

__all__ = ["stratified_split"]


def _n_val(n: int, fraction: float) -> int:
    # round half up, then keep at least one sample on each side when n ≥ 2
    return int(min(max(np.floor(n * fraction + 0.5), 1), n - 1))


def stratified_split(
    labels: ArrayLike,
    val_fraction: float = 0.2,
    seed: int = 0,
    groups: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split into ``(train_indices, val_indices)``, each int64 and sorted ascending.

    Strata are classes, or (class, group) cells when ``groups`` is given. A stratum of size
    ``n ≥ 2`` sends ``clip(round(n·f), 1, n−1)`` samples to validation; a singleton cell goes to
    train, and if a class then has no validation sample one of its singleton cells moves over.
    So every class appears in both parts. Classes with fewer than 2 samples raise ``ValueError``.
    Strata are visited in order with one ``np.random.default_rng(seed)``.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
    y = as_label_array(labels, "labels")
    if y.size == 0:
        raise ValueError("cannot split an empty label array")
    counts = class_counts(y, allow_empty=True)
    too_small = [(k, int(n)) for k, n in enumerate(counts) if 0 < n < 2]
    if too_small:
        raise ValueError(
            "every class needs at least 2 samples to appear in both train and validation; "
            f"(class, count): {too_small}"
        )
    if groups is None:
        g = np.zeros_like(y)
    else:
        g = as_label_array(groups, "groups")
        if g.shape != y.shape:
            raise ValueError(f"groups has {g.size} entries but labels has {y.size}")
        if g.min() < 0:
            raise ValueError(f"group ids must be non-negative, got minimum {int(g.min())}")
    # strata sorted class-major: key = y·G + g; members of each stratum stay ascending
    key = y * (int(g.max()) + 1) + g
    order = np.argsort(key, kind="stable")
    _, starts, sizes = np.unique(key[order], return_index=True, return_counts=True)
    strata_class = y[order[starts]]
    rng = np.random.default_rng(seed)
    val_parts: list[np.ndarray] = []
    _, first, per_class = np.unique(strata_class, return_index=True, return_counts=True)
    for lo, n_strata in zip(first, per_class):
        class_val: list[np.ndarray] = []
        singletons: list[int] = []
        for s in range(lo, lo + n_strata):
            members = order[starts[s] : starts[s] + sizes[s]]
            if members.size == 1:
                singletons.append(int(members[0]))
                continue
            shuffled = rng.permutation(members)
            class_val.append(shuffled[: _n_val(members.size, val_fraction)])
        if not class_val:  # only singleton cells: move one to validation
            class_val.append(np.array([singletons[int(rng.integers(len(singletons)))]]))
        val_parts.extend(class_val)
    val = np.sort(np.concatenate(val_parts)).astype(np.int64)
    is_val = np.zeros(y.size, dtype=bool)
    is_val[val] = True
    train = np.flatnonzero(~is_val).astype(np.int64)
    return train, val
