"""Long-tailed subsampling of a balanced dataset (the LDAM-DRW construction).

Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss", NeurIPS
2019, arXiv:1906.07413, build CIFAR-LT with imbalance ratio ``ρ = n_max / n_min`` as

- exponential profile: ``n_i = int(n_max · ρ^(−i/(K−1)))`` for class ``i = 0 .. K−1``;
- step profile: the first ``K − ⌊μK⌋`` classes keep ``n_max``, the last ``⌊μK⌋`` get
  ``int(n_max / ρ)``.

AutoBalance (Li et al., NeurIPS 2021, arXiv:2201.01212) evaluates on exactly these sets, e.g.
CIFAR10-LT with ``ρ = 100``: 12,406 training images.
"""

from __future__ import annotations

import numpy as np

from autobalance.data.counts import class_counts
from autobalance.labels import as_label_array
from autobalance.typing import ArrayLike

__all__ = ["PROFILES", "long_tail_counts", "make_long_tailed"]

PROFILES: tuple[str, ...] = ("exp", "step")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer ≥ 1, got {value!r}")
    return int(value)


def long_tail_counts(
    n_max: int,
    num_classes: int,
    imbalance_ratio: float,
    profile: str = "exp",
    mu: float = 0.5,
) -> list[int]:
    """Per-class sample counts of a long-tailed set, head class first.

    ``profile="exp"``: ``n_i = int(n_max · ρ^(−i/(K−1)))`` (``[n_max]`` when ``K = 1``).
    ``profile="step"``: ``n_i = n_max`` for the first ``K − ⌊μK⌋`` classes and
    ``int(n_max / ρ)`` for the last ``⌊μK⌋`` (Cao et al. 2019, μ = 0.5 by default).
    ``ρ = imbalance_ratio ≥ 1``; every count must come out ≥ 1.

    >>> long_tail_counts(5000, 10, 100)
    [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    """
    n_max = _positive_int(n_max, "n_max")
    k = _positive_int(num_classes, "num_classes")
    rho = float(imbalance_ratio)
    if not np.isfinite(rho) or rho < 1.0:
        raise ValueError(f"imbalance_ratio must be a finite number ≥ 1, got {imbalance_ratio!r}")
    if profile == "exp":
        # n_i = n_max · ρ^(−i/(K−1)), truncated as in the LDAM-DRW code ([n_max] when K = 1)
        counts = [int(n_max * rho ** (-i / max(k - 1, 1))) for i in range(k)]
    elif profile == "step":
        if not 0.0 <= mu <= 1.0:
            raise ValueError(f"mu must lie in [0, 1], got {mu!r}")
        n_tail = int(mu * k)
        counts = [n_max] * (k - n_tail) + [int(n_max / rho)] * n_tail
    else:
        raise ValueError(f"Unknown profile '{profile}', expected one of {PROFILES}")
    if min(counts) < 1:
        raise ValueError(
            f"n_max={n_max} with imbalance_ratio={rho} leaves tail classes empty "
            f"(counts {counts}); raise n_max or lower the ratio"
        )
    return counts


def make_long_tailed(
    labels: ArrayLike,
    imbalance_ratio: float,
    seed: int = 0,
    profile: str = "exp",
    n_max: int | None = None,
    num_classes: int | None = None,
    mu: float = 0.5,
) -> np.ndarray:
    """Indices of a long-tailed subset of ``labels``, int64.

    Counts come from :func:`long_tail_counts` with ``n_max`` defaulting to the smallest class
    size (5000 for CIFAR-10). One ``np.random.default_rng(seed)`` visits the classes in label
    order ``0 .. K−1``; for class ``i`` it permutes that class's indices
    (``rng.permutation``) and keeps the first ``n_i``. The result is the concatenation class by
    class (all of class 0, then class 1, ...), ascending within each class.
    With ``seed=0``, ``ρ=100`` on CIFAR-10 train this selects 12,406 images.
    """
    y = as_label_array(labels, "labels")
    available = class_counts(y, num_classes)  # rejects empty classes and bad labels
    k = available.size
    if n_max is None:
        n_max = int(available.min())
    wanted = long_tail_counts(n_max, k, imbalance_ratio, profile=profile, mu=mu)
    short = [(i, int(available[i]), n) for i, n in enumerate(wanted) if available[i] < n]
    if short:
        raise ValueError(
            "classes have fewer samples than the long-tail profile needs "
            f"(class, available, needed): {short}"
        )
    rng = np.random.default_rng(seed)
    order = np.argsort(y, kind="stable")
    starts = np.concatenate([[0], np.cumsum(available)])
    parts = []
    for i, n in enumerate(wanted):
        members = order[starts[i] : starts[i + 1]]  # class i's indices, ascending
        parts.append(np.sort(rng.permutation(members)[:n]))
    return np.concatenate(parts).astype(np.int64)
