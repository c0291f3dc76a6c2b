"""Synthetic datasets for fast end-to-end checks of imbalance- and group-aware training.

- :func:`long_tailed_gaussians`: a K-class isotropic Gaussian mixture whose training set follows
  the LDAM-DRW long-tail profile (Cao et al. 2019, arXiv:1906.07413) and whose test set is
  balanced, so that plain cross-entropy visibly under-predicts the tail classes.
- :func:`waterbirds_like_features`: 2 classes × 2 groups with the Waterbirds training
  proportions used by AutoBalance (Li et al., NeurIPS 2021, arXiv:2201.01212, Sec. 4), a weak
  core (class) signal and a strong spurious (group) signal.

Randomness: ``np.random.default_rng([seed, stream])`` with one stream for the fixed structure
(class means) and one per split, so the train and test sets of a seed share their distribution
but not their samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from autobalance.data.dataset import InMemoryDataset
from autobalance.data.longtail import long_tail_counts

__all__ = [
    "SPLITS",
    "WATERBIRDS_PROPORTIONS",
    "long_tailed_gaussians",
    "waterbirds_like_features",
]

SPLITS: tuple[str, ...] = ("train", "test")

# π(y, g) of the Waterbirds training set as reported by AutoBalance (Sec. 4): rows y, columns g.
# Paper notation → ours: class "−" → y=0, "+" → y=1; group "1" → g=0, group "2" → g=1.
# π(−,1)=0.012, π(−,2)=0.22, π(+,1)=0.73, π(+,2)=0.038. With the real data, "+" is landbird,
# "−" waterbird, group 1 land background and group 2 water background.
WATERBIRDS_PROPORTIONS: tuple[tuple[float, float], tuple[float, float]] = (
    (0.012, 0.22),
    (0.73, 0.038),
)

_STRUCTURE, _TRAIN, _TEST = 0, 1, 2


def _check_split(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"Unknown split '{split}', expected one of {SPLITS}")
    return _TRAIN if split == "train" else _TEST


def _check_positive(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer ≥ 1, got {value!r}")


def _largest_remainder(n: int, proportions: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``n`` closest to ``n · p`` (Hamilton's largest remainder)."""
    exact = n * proportions
    counts = np.floor(exact).astype(np.int64)
    leftover = n - int(counts.sum())
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:leftover]] += 1
    return counts


def long_tailed_gaussians(
    num_classes: int = 10,
    dim: int = 32,
    n_max: int = 500,
    imbalance_ratio: float = 100.0,
    separation: float = 2.5,
    seed: int = 0,
    split: str = "train",
    n_test_per_class: int = 200,
    profile: str = "exp",
) -> InMemoryDataset:
    """Long-tailed Gaussian mixture: ``x | y=k ~ N(μ_k, I_d)``, float32 features.

    Means ``μ_k = separation · u_k`` with ``u_k`` random unit vectors (fixed by ``seed`` across
    splits), so neighbouring classes overlap (pairwise Bayes error ``Φ(−separation/√2)`` for
    near-orthogonal ``u``). The ``"train"`` split has ``n_k = int(n_max · ρ^(−k/(K−1)))``
    samples of class ``k`` (:func:`~autobalance.data.longtail.long_tail_counts`); ``"test"`` has
    ``n_test_per_class`` of every class. Rows are shuffled.
    """
    stream = _check_split(split)
    _check_positive(num_classes, "num_classes")
    _check_positive(dim, "dim")
    _check_positive(n_test_per_class, "n_test_per_class")
    if not np.isfinite(separation) or separation < 0:
        raise ValueError(f"separation must be a finite number ≥ 0, got {separation!r}")
    if stream == _TRAIN:
        counts = long_tail_counts(n_max, num_classes, imbalance_ratio, profile=profile)
    else:
        counts = [n_test_per_class] * num_classes
    directions = np.random.default_rng([seed, _STRUCTURE]).standard_normal((num_classes, dim))
    means = separation * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    rng = np.random.default_rng([seed, stream])
    y = np.repeat(np.arange(num_classes), counts)
    x = means[y] + rng.standard_normal((y.size, dim))
    perm = rng.permutation(y.size)
    return InMemoryDataset(
        x=torch.from_numpy(x[perm]).float(),
        y=torch.from_numpy(y[perm]).long(),
        num_classes=num_classes,
        class_names=[f"class_{k}" for k in range(num_classes)],
        name=f"long_tailed_gaussians-{split}",
    )


def waterbirds_like_features(
    n: int = 4795,
    dim: int = 512,
    seed: int = 0,
    split: str = "train",
    n_test_per_cell: int = 500,
    proportions: Sequence[Sequence[float]] = WATERBIRDS_PROPORTIONS,
    core_dim: int = 32,
    core_strength: float = 2.0,
    spurious_dim: int = 32,
    spurious_strength: float = 4.0,
) -> InMemoryDataset:
    """Waterbirds-like features with a core class signal and a spurious group signal.

    Labels ``y ∈ {0, 1}`` and groups ``g ∈ {0, 1}``; the ``"train"`` split has ``n`` samples
    with cell counts ``≈ n · π(y, g)`` (largest-remainder rounding, exact total), defaulting to
    :data:`WATERBIRDS_PROPORTIONS` (π(y=1, g=0)=0.73 is the majority, π(y=0, g=0)=0.012 the
    rarest). ``"test"`` has ``n_test_per_cell`` samples in each of the 4 cells. Features are
    ``x = core_strength·(2y−1)·c + spurious_strength·(2g−1)·s + N(0, I_dim)`` with ``c`` and
    ``s`` unit vectors spread evenly over the first ``core_dim`` and the next ``spurious_dim``
    coordinates: a linear rule on the core block alone errs with probability
    ``Φ(−core_strength)``, on the spurious block ``Φ(−spurious_strength)`` (for ``g``).
    """
    stream = _check_split(split)
    for value, name in ((n, "n"), (dim, "dim"), (n_test_per_cell, "n_test_per_cell")):
        _check_positive(value, name)
    for value, name in ((core_dim, "core_dim"), (spurious_dim, "spurious_dim")):
        _check_positive(value, name)
    if core_dim + spurious_dim > dim:
        raise ValueError(f"core_dim + spurious_dim = {core_dim + spurious_dim} exceeds dim = {dim}")
    pi = np.asarray(proportions, dtype=np.float64)
    if pi.shape != (2, 2) or not np.isfinite(pi).all() or (pi < 0).any():
        raise ValueError(f"proportions must be a 2×2 table of non-negative numbers, got {pi}")
    if not np.isclose(pi.sum(), 1.0):
        raise ValueError(f"proportions must sum to 1, got {pi.sum():.6g}")
    if stream == _TRAIN:
        cells = _largest_remainder(n, pi.ravel())
    else:
        cells = np.full(4, n_test_per_cell, dtype=np.int64)
    # cell index c = 2·y + g, so y = c // 2 and g = c % 2
    cell = np.repeat(np.arange(4), cells)
    y, g = cell // 2, cell % 2
    core = np.zeros(dim)
    core[:core_dim] = 1.0 / np.sqrt(core_dim)
    spurious = np.zeros(dim)
    spurious[core_dim : core_dim + spurious_dim] = 1.0 / np.sqrt(spurious_dim)
    rng = np.random.default_rng([seed, stream])
    x = (
        core_strength * (2 * y - 1)[:, None] * core
        + spurious_strength * (2 * g - 1)[:, None] * spurious
        + rng.standard_normal((cell.size, dim))
    )
    perm = rng.permutation(cell.size)
    return InMemoryDataset(
        x=torch.from_numpy(x[perm]).float(),
        y=torch.from_numpy(y[perm]).long(),
        num_classes=2,
        groups=torch.from_numpy(g[perm]).long(),
        num_groups=2,
        class_names=["waterbird", "landbird"],
        group_names=["land", "water"],
        name=f"waterbirds_like-{split}",
    )
